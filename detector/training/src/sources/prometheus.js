// Prometheus source: runs /api/v1/query_range for a selector (any PromQL
// expression) over [start, end] at `step` seconds, splitting the range into
// chunks below Prometheus' 11,000-points-per-series limit, and returns one
// series per label set on a regular grid (gaps are NaN).
//
// Authentication: basic ({username, password}) or bearer ({bearerToken}).

const MAX_POINTS = 10000;

export function parseTime(s, now = Date.now() / 1000) {
  if (typeof s === 'number') return s;
  const t = String(s).trim();
  if (t === 'now') return now;
  const rel = /^now-(\d+(?:\.\d+)?)([smhdw])$/.exec(t);
  if (rel) return now - Number(rel[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[rel[2]];
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw new Error(`cannot parse time ${JSON.stringify(s)} (want Unix seconds, RFC 3339, now or now-<n><s|m|h|d|w>)`);
  return ms / 1000;
}

export function parseDuration(s) {
  if (typeof s === 'number') return s;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(s).trim());
  if (!m) throw new Error(`cannot parse duration ${JSON.stringify(s)}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] || 's'];
}

function labelKey(metric) {
  const keys = Object.keys(metric).sort();
  return '{' + keys.map((k) => `${k}=${JSON.stringify(metric[k])}`).join(',') + '}';
}

function authHeaders({ username, password, bearerToken }) {
  if (bearerToken && username) throw new Error('prometheus: use either basic auth or a bearer token, not both');
  if (bearerToken) return { Authorization: `Bearer ${bearerToken}` };
  if (username) return { Authorization: 'Basic ' + Buffer.from(`${username}:${password ?? ''}`).toString('base64') };
  return {};
}

// fetchPrometheus returns [{name, values, start, step}].
export async function fetchPrometheus({ url, query, start, end, step = 60, username, password, bearerToken, timeoutMs = 60000, fetchImpl = fetch, maxSeries = 10000 }) {
  if (!url) throw new Error('prometheus: --prom-url is required');
  if (!query) throw new Error('prometheus: --prom-query is required');
  const now = Date.now() / 1000;
  const s = parseTime(start ?? 'now-7d', now);
  const e = parseTime(end ?? 'now', now);
  const st = parseDuration(step);
  if (!(st > 0)) throw new Error('prometheus: step must be > 0');
  if (!(e > s)) throw new Error(`prometheus: end (${e}) must be after start (${s})`);
  const headers = { Accept: 'application/json', ...authHeaders({ username, password, bearerToken }) };
  const base = url.replace(/\/+$/, '') + '/api/v1/query_range';
  const bySeries = new Map();
  const chunk = st * (MAX_POINTS - 1);
  for (let cs = s; cs <= e; cs += chunk + st) {
    const ce = Math.min(cs + chunk, e);
    const body = new URLSearchParams({ query, start: String(cs), end: String(ce), step: String(st) });
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    let res;
    try {
      res = await fetchImpl(base, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' }, body, signal: ctl.signal });
    } catch (err) {
      throw new Error(`prometheus: cannot query ${base}: ${err.message}`);
    } finally {
      clearTimeout(timer);
    }
    const text = await res.text();
    let doc;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new Error(`prometheus: ${base} answered ${res.status} with a non-JSON body: ${text.slice(0, 200)}`);
    }
    if (!res.ok || doc.status !== 'success') {
      throw new Error(`prometheus: query failed (HTTP ${res.status}): ${doc.errorType ? doc.errorType + ': ' : ''}${doc.error || text.slice(0, 200)}`);
    }
    if (!doc.data || doc.data.resultType !== 'matrix' || !Array.isArray(doc.data.result)) {
      throw new Error(`prometheus: expected a matrix result, got ${doc.data && doc.data.resultType}`);
    }
    for (const r of doc.data.result) {
      const key = labelKey(r.metric || {});
      if (!bySeries.has(key)) {
        if (bySeries.size >= maxSeries) throw new Error(`prometheus: more than ${maxSeries} series; narrow the selector`);
        bySeries.set(key, []);
      }
      const pts = bySeries.get(key);
      for (const [ts, v] of r.values || []) pts.push([Number(ts), Number(v)]);
    }
  }
  // Every series is placed on the same grid, anchored on the query start.
  const n = Math.floor((e - s) / st + 1e-9) + 1;
  const out = [];
  for (const [name, pts] of bySeries) {
    const values = new Float64Array(n).fill(NaN);
    for (const [ts, v] of pts) {
      const i = Math.round((ts - s) / st);
      if (i >= 0 && i < n) values[i] = v;
    }
    out.push({ name, values, start: s, step: st });
  }
  return { series: out, start: s, end: e, step: st };
}
