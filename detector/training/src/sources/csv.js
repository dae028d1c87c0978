// CSV source: one series per file, lines "timestamp,value". The timestamp is
// Unix seconds (integer or fractional), Unix milliseconds (> 1e11) or an
// RFC 3339 / ISO 8601 date. A first line that does not parse (a header) is
// skipped; lines starting with '#' and empty lines are ignored. Values that are
// not finite numbers ("NaN", "", ...) are kept as gaps.

import fs from 'node:fs/promises';
import path from 'node:path';
import { toGrid } from './grid.js';

export function parseTimestamp(s) {
  const t = s.trim();
  if (/^-?\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    return n > 1e11 ? n / 1000 : n;
  }
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? NaN : ms / 1000;
}

export function parseCsv(text, name = 'csv') {
  const points = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    const l = line.trim();
    if (l === '' || l.startsWith('#')) return;
    const cols = l.split(',');
    if (cols.length < 2) throw new Error(`${name}:${i + 1}: want "timestamp,value", got ${JSON.stringify(l)}`);
    const ts = parseTimestamp(cols[0].replace(/^"|"$/g, ''));
    if (Number.isNaN(ts)) {
      if (points.length === 0 && i === lines.findIndex((x) => x.trim() !== '' && !x.trim().startsWith('#'))) return; // header
      throw new Error(`${name}:${i + 1}: cannot parse timestamp ${JSON.stringify(cols[0])}`);
    }
    const raw = cols[1].trim().replace(/^"|"$/g, '');
    const v = raw === '' ? NaN : Number(raw);
    points.push([ts, v]);
  });
  return points;
}

// loadCsv reads the given files (or every *.csv file of a directory).
export async function loadCsv(paths, { step } = {}) {
  const files = [];
  for (const p of paths) {
    const st = await fs.stat(p).catch((err) => { throw new Error(`cannot read ${p}: ${err.message}`); });
    if (st.isDirectory()) {
      const names = (await fs.readdir(p)).filter((n) => n.endsWith('.csv')).sort();
      files.push(...names.map((n) => path.join(p, n)));
    } else files.push(p);
  }
  if (!files.length) throw new Error(`no CSV files in ${paths.join(', ')}`);
  const out = [];
  for (const f of files) {
    const points = parseCsv(await fs.readFile(f, 'utf8'), f);
    if (points.length < 2) throw new Error(`${f}: fewer than 2 samples`);
    const g = toGrid(points, step);
    out.push({ name: path.basename(f, '.csv'), values: g.values, start: g.start, step: g.step });
  }
  return out;
}
