#!/usr/bin/env node
// Trains the Sentinel Mesh LSTM forecaster and exports it as an ONNX model
// directory (model.onnx, model.json, parity.json) following docs/model.md.
//
//   node src/train.js --out <dir> [--source synthetic|csv|prometheus] [...]
//
// Run with --help for every flag; docs/training.md explains them.

import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

import { initBackend, tf } from './backend.js';
import { Rng, mulberry32 } from './rng.js';
import { generateSynthetic } from './synthetic.js';
import { buildWindows } from './windows.js';
import { DEFAULT_NORMALISATION, normaliseWindow } from './normalise.js';
import { buildModel, describeArch, parseList, REFERENCE_ARCH } from './model.js';
import { exportOnnx, OPSET, INPUT_NAME, OUTPUT_NAME } from './onnx.js';
import { runReference } from './onnx-reference.js';
import { loadCsv } from './sources/csv.js';
import { fetchPrometheus } from './sources/prometheus.js';
import { ProgressBar, formatDuration } from './progress.js';

export const FORMAT = 'sentinel-mesh/v1';

const OPTIONS = {
  out: { type: 'string' },
  source: { type: 'string', default: 'synthetic' },
  // synthetic
  series: { type: 'string', default: '64' },
  length: { type: 'string', default: '4096' },
  // csv
  csv: { type: 'string', multiple: true },
  'csv-step': { type: 'string' },
  // prometheus
  'prom-url': { type: 'string' },
  'prom-query': { type: 'string' },
  'prom-start': { type: 'string', default: 'now-7d' },
  'prom-end': { type: 'string', default: 'now' },
  'prom-step': { type: 'string', default: '60s' },
  'prom-user': { type: 'string' },
  'prom-password': { type: 'string' },
  'prom-bearer': { type: 'string' },
  // windows and model
  window: { type: 'string', default: '32' },
  windows: { type: 'string', default: '100000' },
  'val-split': { type: 'string', default: '0.1' },
  units: { type: 'string', default: REFERENCE_ARCH.units.join(',') },
  layers: { type: 'string' },
  dense: { type: 'string', default: REFERENCE_ARCH.dense.join(',') },
  dropout: { type: 'string', default: String(REFERENCE_ARCH.dropout) },
  // training
  epochs: { type: 'string', default: '5' },
  batch: { type: 'string', default: '256' },
  lr: { type: 'string', default: '0.001' },
  seed: { type: 'string', default: '1' },
  backend: { type: 'string', default: 'wasm' },
  // output
  parity: { type: 'string', default: '64' },
  'model-version': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const HELP = `usage: node src/train.js --out DIR [flags]

data (default --source synthetic):
  --source synthetic|csv|prometheus
  --series N --length N          synthetic: series count (64) and points per series (4096)
  --csv PATH                     csv: a file "timestamp,value" or a directory of *.csv (repeatable)
  --csv-step SECONDS             csv: grid step (default: the median sample spacing)
  --prom-url URL --prom-query PROMQL
  --prom-start T --prom-end T    Unix seconds, RFC 3339, now, now-7d (defaults now-7d, now)
  --prom-step D                  query_range step (60s)
  --prom-user U --prom-password P   basic auth (or env SENTINEL_PROM_PASSWORD)
  --prom-bearer TOKEN            bearer auth (or env SENTINEL_PROM_BEARER_TOKEN)
model (defaults: the reference architecture ${describeArch(REFERENCE_ARCH)}):
  --window W (32) --units 128,64 [--layers N] --dense 32|none --dropout 0.2
training:
  --windows N (100000, train+validation) --val-split 0.1 --epochs 5 --batch 256 --lr 0.001
  --seed 1 --backend wasm|cpu
output:
  --out DIR --parity N (64 fixture windows) --model-version STRING
`;

function num(opts, key, { int = false, min = -Infinity, max = Infinity } = {}) {
  const raw = opts[key];
  const n = Number(raw);
  if (raw === undefined || raw === '' || !Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min || n > max) {
    throw new Error(`--${key}: want ${int ? 'an integer' : 'a number'} in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  return n;
}

export function parseConfig(argv) {
  const { values: o } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  if (o.help) return { help: true };
  if (!o.out) throw new Error('--out DIR is required');
  let units = parseList(o.units, 'units');
  if (o.layers !== undefined) {
    const layers = num(o, 'layers', { int: true, min: 1, max: 8 });
    if (units.length === 1) units = Array(layers).fill(units[0]);
    else if (units.length !== layers) throw new Error(`--layers ${layers} does not match --units ${o.units}`);
  }
  if (!units.length) throw new Error('--units: at least one LSTM layer is required');
  const cfg = {
    out: o.out,
    source: o.source,
    series: num(o, 'series', { int: true, min: 1 }),
    length: num(o, 'length', { int: true, min: 2 }),
    csv: o.csv || [],
    csvStep: o['csv-step'] !== undefined ? num(o, 'csv-step', { min: 1e-3 }) : undefined,
    prom: {
      url: o['prom-url'], query: o['prom-query'], start: o['prom-start'], end: o['prom-end'], step: o['prom-step'],
      username: o['prom-user'], password: o['prom-password'] ?? process.env.SENTINEL_PROM_PASSWORD,
      bearerToken: o['prom-bearer'] ?? process.env.SENTINEL_PROM_BEARER_TOKEN,
    },
    window: num(o, 'window', { int: true, min: 2, max: 4096 }),
    windows: num(o, 'windows', { int: true, min: 2 }),
    valSplit: num(o, 'val-split', { min: 0, max: 0.9 }),
    units,
    dense: parseList(o.dense, 'dense'),
    dropout: num(o, 'dropout', { min: 0, max: 0.99 }),
    epochs: num(o, 'epochs', { int: true, min: 1 }),
    batch: num(o, 'batch', { int: true, min: 1 }),
    lr: num(o, 'lr', { min: 1e-9, max: 10 }),
    seed: num(o, 'seed', { int: true, min: 0, max: 2 ** 31 - 1 }),
    backend: o.backend,
    parity: num(o, 'parity', { int: true, min: 1, max: 100000 }),
    modelVersion: o['model-version'],
  };
  if (!['synthetic', 'csv', 'prometheus'].includes(cfg.source)) throw new Error(`--source: want synthetic, csv or prometheus, got ${JSON.stringify(cfg.source)}`);
  if (cfg.source === 'csv' && !cfg.csv.length) throw new Error('--source csv needs at least one --csv PATH');
  if (!cfg.modelVersion) cfg.modelVersion = `lstm-w${cfg.window}-u${cfg.units.join('x')}${cfg.dense.length ? '-d' + cfg.dense.join('x') : ''}-s${cfg.seed}`;
  return cfg;
}

async function loadSeries(cfg, log) {
  if (cfg.source === 'synthetic') {
    const series = generateSynthetic({ seed: cfg.seed, series: cfg.series, length: cfg.length });
    const s0 = series[0];
    return { series, range: { start: s0.start, end: s0.start + (cfg.length - 1) * s0.step } };
  }
  if (cfg.source === 'csv') {
    const series = await loadCsv(cfg.csv, { step: cfg.csvStep });
    const start = Math.min(...series.map((s) => s.start));
    const end = Math.max(...series.map((s) => s.start + (s.values.length - 1) * s.step));
    return { series, range: { start, end } };
  }
  log(`querying ${cfg.prom.url} for ${cfg.prom.query}`);
  const r = await fetchPrometheus(cfg.prom);
  if (!r.series.length) throw new Error(`prometheus: ${cfg.prom.query} returned no series between ${cfg.prom.start} and ${cfg.prom.end}`);
  return { series: r.series, range: { start: r.start, end: r.end } };
}

function gather(x, y, idx, from, to, W, xb, yb) {
  for (let k = from; k < to; k++) {
    const i = idx[k];
    xb.set(x.subarray(i * W, (i + 1) * W), (k - from) * W);
    yb[k - from] = y[i];
  }
}

// predictAll runs the tfjs model over n windows in chunks.
function predictAll(model, x, n, W, chunk = 4096) {
  const out = new Float32Array(n);
  for (let s = 0; s < n; s += chunk) {
    const e = Math.min(n, s + chunk);
    const p = tf.tidy(() => model.predict(tf.tensor3d(x.subarray(s * W, e * W), [e - s, W, 1])).dataSync());
    out.set(p, s);
  }
  return out;
}

function mse(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}

export async function train(cfg, { log = (m) => process.stderr.write(m + '\n'), progressStream = process.stderr } = {}) {
  const t0 = Date.now();
  // tfjs draws seeds for dropout masks and shuffling from Math.random; make it
  // deterministic so that a run is reproducible from --seed.
  Math.random = mulberry32(cfg.seed ^ 0x9e3779b9);
  const backend = await initBackend(cfg.backend);
  log(`tfjs ${tf.version.tfjs} backend=${backend}`);

  const { series, range } = await loadSeries(cfg, log);
  const rng = new Rng(cfg.seed + 7919);
  const W = cfg.window;
  const data = buildWindows(series, { window: W, count: cfg.windows, rng, normalisation: DEFAULT_NORMALISATION });
  const nVal = Math.max(cfg.valSplit > 0 ? 1 : 0, Math.floor(data.n * cfg.valSplit));
  const nTrain = data.n - nVal;
  if (nTrain < 1) throw new Error(`only ${data.n} windows available; need more data`);
  log(`source=${cfg.source} series=${series.length} windows=${data.n} (of ${data.available} available) train=${nTrain} val=${nVal}`);

  const arch = { units: cfg.units, dense: cfg.dense, dropout: cfg.dropout };
  const model = buildModel({ window: W, ...arch, seed: cfg.seed });
  model.compile({ optimizer: tf.train.adam(cfg.lr), loss: 'meanSquaredError' });
  log(`architecture ${describeArch(arch)} params=${model.countParams()}`);

  const valX = data.x.subarray(nTrain * W);
  const valY = data.y.subarray(nTrain);
  const idx = Int32Array.from({ length: nTrain }, (_, i) => i);
  const xb = new Float32Array(cfg.batch * W);
  const yb = new Float32Array(cfg.batch);
  const bar = new ProgressBar(nTrain * cfg.epochs, { stream: progressStream });
  const history = [];
  let trainLoss = NaN;
  let valLoss = NaN;
  const tTrain = Date.now();
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    rng.shuffle(idx);
    let sum = 0;
    let seen = 0;
    for (let s = 0; s < nTrain; s += cfg.batch) {
      const e = Math.min(nTrain, s + cfg.batch);
      const b = e - s;
      gather(data.x, data.y, idx, s, e, W, xb, yb);
      const xs = tf.tensor3d(xb.subarray(0, b * W), [b, W, 1]);
      const ys = tf.tensor2d(yb.subarray(0, b), [b, 1]);
      const loss = await model.trainOnBatch(xs, ys);
      xs.dispose();
      ys.dispose();
      const l = Array.isArray(loss) ? loss[0] : loss;
      if (!Number.isFinite(l)) throw new Error(`training diverged: loss ${l} at epoch ${epoch + 1}`);
      sum += l * b;
      seen += b;
      bar.update(epoch * nTrain + e, `epoch ${epoch + 1}/${cfg.epochs} loss ${(sum / seen).toFixed(4)}`);
    }
    trainLoss = sum / seen;
    valLoss = nVal ? mse(predictAll(model, valX, nVal, W), valY) : NaN;
    history.push({ epoch: epoch + 1, loss: round(trainLoss), val_loss: round(valLoss) });
    if (!progressStream.isTTY || epoch === cfg.epochs - 1) bar.update(bar.done, `epoch ${epoch + 1}/${cfg.epochs}`);
    if (progressStream.isTTY) progressStream.write('\n');
    log(`epoch ${epoch + 1}/${cfg.epochs} loss=${trainLoss.toFixed(5)} val_loss=${valLoss.toFixed(5)}`);
  }
  const trainSeconds = (Date.now() - tTrain) / 1000;
  // Baseline for the log: predicting the window mean (0 in normalised units).
  const naive = nVal ? mse(new Float32Array(nVal), valY) : NaN;
  let lastVal = 0;
  if (nVal) {
    for (let i = 0; i < nVal; i++) lastVal += (valX[i * W + W - 1] - valY[i]) ** 2;
    lastVal /= nVal;
  }
  log(`validation mse: model=${valLoss.toFixed(5)} predict-mean=${naive.toFixed(5)} predict-last=${lastVal.toFixed(5)}`);

  // Parity fixture: half validation windows, half random windows normalised the same way.
  const prng = new Rng(cfg.seed + 104729);
  const P = cfg.parity;
  const px = new Float32Array(P * W);
  const raw = new Float64Array(W);
  for (let k = 0; k < P; k++) {
    if (k < P / 2 && nVal > 0) {
      const i = prng.int(0, nVal);
      px.set(valX.subarray(i * W, (i + 1) * W), k * W);
    } else {
      const level = prng.uniform(-100, 1000);
      const sd = Math.exp(prng.uniform(-3, 5));
      let walk = 0;
      for (let i = 0; i < W; i++) {
        walk += prng.normal(0, sd * 0.3);
        raw[i] = level + walk + prng.normal(0, sd) + (prng.bool(0.03) ? sd * prng.uniform(5, 30) : 0);
      }
      normaliseWindow(raw, 0, W, px, k * W, DEFAULT_NORMALISATION);
    }
  }
  const ppred = predictAll(model, px, P, W);

  const onnxBytes = exportOnnx(model, { window: W, docString: `Sentinel Mesh ${describeArch(arch)}; see docs/model.md`, metadata: { version: cfg.modelVersion, window: W } });
  // Check the exported graph against tfjs with an independent float64 interpreter.
  const ref = runReference(onnxBytes, px, P);
  let refDiff = 0;
  for (let i = 0; i < P; i++) refDiff = Math.max(refDiff, Math.abs(ref[i] - ppred[i]));
  log(`export check: max |onnx reference - tfjs| = ${refDiff.toExponential(3)} over ${P} windows`);
  if (!(refDiff <= 1e-4)) throw new Error(`exported ONNX graph disagrees with tfjs (max diff ${refDiff})`);

  const iso = (s) => new Date(s * 1000).toISOString();
  const meta = {
    format: FORMAT,
    version: cfg.modelVersion,
    window: W,
    input: INPUT_NAME,
    output: OUTPUT_NAME,
    normalisation: { ...DEFAULT_NORMALISATION },
    architecture: describeArch(arch),
    opset: OPSET,
    training: {
      source: cfg.source,
      seed: cfg.seed,
      series: series.length,
      windows: nTrain,
      validation_windows: nVal,
      epochs: cfg.epochs,
      batch_size: cfg.batch,
      learning_rate: cfg.lr,
      loss: round(trainLoss),
      validation_loss: round(valLoss),
      validation_baseline_mean: round(naive),
      validation_baseline_last: round(lastVal),
      history,
      range: { start: iso(range.start), end: iso(range.end) },
      framework: `tfjs ${tf.version.tfjs} (${backend})`,
      parameters: model.countParams(),
    },
  };
  const parity = {
    window: W,
    count: P,
    inputs: Array.from({ length: P }, (_, k) => Array.from(px.subarray(k * W, (k + 1) * W))),
    predictions: Array.from(ppred),
    tolerance: 1e-5,
    produced_by: `tfjs ${tf.version.tfjs} (${backend})`,
  };
  await fs.mkdir(cfg.out, { recursive: true });
  await fs.writeFile(path.join(cfg.out, 'model.onnx'), onnxBytes);
  await fs.writeFile(path.join(cfg.out, 'model.json'), JSON.stringify(meta, null, 2) + '\n');
  await fs.writeFile(path.join(cfg.out, 'parity.json'), JSON.stringify(parity) + '\n');
  const total = (Date.now() - t0) / 1000;
  log(`wrote ${cfg.out}/{model.onnx,model.json,parity.json} (${onnxBytes.length} bytes); training ${formatDuration(trainSeconds)} (${trainSeconds.toFixed(1)} s), total ${total.toFixed(1)} s`);
  model.dispose();
  return { meta, parity, trainSeconds, totalSeconds: total, refDiff };
}

function round(v) {
  return Number.isFinite(v) ? Number(v.toPrecision(6)) : null;
}

async function main() {
  let cfg;
  try {
    cfg = parseConfig(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`train: ${err.message}\n\n${HELP}`);
    process.exit(2);
  }
  if (cfg.help) {
    process.stdout.write(HELP);
    return;
  }
  try {
    await train(cfg);
  } catch (err) {
    process.stderr.write(`train: ${err.message}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
