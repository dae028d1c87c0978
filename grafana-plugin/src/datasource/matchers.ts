/** A label matcher as in PromQL. */
export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface LabelMatcher {
  name: string;
  op: MatchOp;
  value: string;
}

export const MATCH_OPS: MatchOp[] = ['=', '!=', '=~', '!~'];

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function quote(v: string): string {
  return '"' + v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

/** Renders matchers as one PromQL series selector; incomplete rows are skipped. */
export function buildSelector(ms: LabelMatcher[]): string {
  const parts = ms.filter((m) => LABEL_NAME.test(m.name)).map((m) => `${m.name}${m.op}${quote(m.value)}`);
  return parts.length ? `{${parts.join(', ')}}` : '';
}

const MATCHER = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

/**
 * Parses a selector written by buildSelector (or a bare metric name) back
 * into rows. Returns undefined for selectors the builder cannot represent,
 * which the editor then keeps as raw text.
 */
export function parseSelector(s: string): LabelMatcher[] | undefined {
  let text = s.trim();
  if (text === '') {
    return [];
  }
  const out: LabelMatcher[] = [];
  const metric = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\s*/.exec(text);
  if (metric) {
    out.push({ name: '__name__', op: '=', value: metric[1] });
    text = text.slice(metric[0].length);
    if (text === '') {
      return out;
    }
  }
  if (!text.startsWith('{') || !text.endsWith('}')) {
    return undefined;
  }
  const body = text.slice(1, -1);
  MATCHER.lastIndex = 0;
  while (MATCHER.lastIndex < body.length) {
    if (body.slice(MATCHER.lastIndex).trim() === '') {
      break;
    }
    const m = MATCHER.exec(body);
    if (!m) {
      return undefined;
    }
    out.push({ name: m[1], op: m[2] as MatchOp, value: m[3].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c)) });
  }
  return out;
}
