#!/usr/bin/env node
// dump-synthetic writes the synthetic series `make model` trains on as a
// corpus in the layout of ../shared/nab-dev (data/synthetic/<name>.csv and a
// combined_windows.json without anomalies), so the Python trainer can learn
// from the same data (docs/detection.md compares the two models):
//
//   node src/dump-synthetic.js --out DIR [--seed 1] [--series 128] [--length 4096]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generateSynthetic } from './synthetic.js';

// writeSyntheticCorpus writes the corpus under dir and returns the files' keys.
export function writeSyntheticCorpus(dir, { seed = 1, series = 128, length = 4096 } = {}) {
  const data = path.join(dir, 'data', 'synthetic');
  fs.mkdirSync(data, { recursive: true });
  const windows = {};
  for (const s of generateSynthetic({ seed, series, length })) {
    const lines = ['timestamp,value'];
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return; // a gap: the row is left out
      const t = new Date((s.start + i * s.step) * 1000).toISOString().replace('T', ' ').slice(0, 19);
      lines.push(`${t},${v}`);
    });
    fs.writeFileSync(path.join(data, `${s.name}.csv`), lines.join('\n') + '\n');
    windows[`synthetic/${s.name}.csv`] = [];
  }
  fs.writeFileSync(path.join(dir, 'combined_windows.json'), JSON.stringify(windows, null, 1) + '\n');
  return Object.keys(windows);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      seed: { type: 'string', default: '1' },
      series: { type: 'string', default: '128' },
      length: { type: 'string', default: '4096' },
    },
  });
  if (!values.out) {
    console.error('dump-synthetic: --out DIR is required');
    process.exit(2);
  }
  const keys = writeSyntheticCorpus(values.out, {
    seed: Number(values.seed), series: Number(values.series), length: Number(values.length),
  });
  console.log(`wrote ${keys.length} series to ${values.out}`);
}
