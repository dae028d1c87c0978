import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { parseConfig, train } from '../src/train.js';
import { runReference } from '../src/onnx-reference.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.join(here, '..', 'src', 'train.js');
const sha = (b) => createHash('sha256').update(b).digest('hex');
const quiet = { log: () => {}, progressStream: { write() {}, isTTY: false } };

test('config parsing', () => {
  const c = parseConfig(['--out', 'x']);
  assert.deepEqual(c.units, [128, 64]);
  assert.deepEqual(c.dense, [32]);
  assert.equal(c.dropout, 0.2);
  assert.equal(c.window, 32);
  const s = parseConfig(['--out', 'x', '--units', '32', '--layers', '2', '--dense', 'none', '--dropout', '0', '--window', '16']);
  assert.deepEqual(s.units, [32, 32]);
  assert.deepEqual(s.dense, []);
  assert.equal(s.modelVersion, 'lstm-w16-u32x32-s1');
  assert.throws(() => parseConfig([]), /--out/);
  assert.throws(() => parseConfig(['--out', 'x', '--epochs', '0']), /--epochs/);
  assert.throws(() => parseConfig(['--out', 'x', '--units', '8,8', '--layers', '3']), /--layers/);
  assert.throws(() => parseConfig(['--out', 'x', '--source', 'csv']), /--csv/);
  assert.throws(() => parseConfig(['--out', 'x', '--bogus']), /bogus/);
});

test('training is reproducible and writes a consistent model directory', async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'train-'));
  try {
    const args = (out) => ['--out', out, '--units', '8', '--dense', 'none', '--dropout', '0', '--window', '16',
      '--windows', '600', '--epochs', '2', '--series', '4', '--length', '400', '--parity', '8', '--seed', '7'];
    const a = await train(parseConfig(args(path.join(tmp, 'a'))), quiet);
    await train(parseConfig(args(path.join(tmp, 'b'))), quiet);
    for (const f of ['model.onnx', 'model.json', 'parity.json']) {
      const fa = await fs.readFile(path.join(tmp, 'a', f));
      const fb = await fs.readFile(path.join(tmp, 'b', f));
      assert.equal(sha(fa), sha(fb), `${f} differs between two runs with the same seed`);
    }
    const meta = JSON.parse(await fs.readFile(path.join(tmp, 'a', 'model.json'), 'utf8'));
    assert.equal(meta.format, 'sentinel-mesh/v1');
    assert.equal(meta.window, 16);
    assert.equal(meta.input, 'window');
    assert.equal(meta.output, 'prediction');
    assert.equal(meta.opset, 17);
    assert.equal(meta.architecture, 'LSTM(8) -> Dense(1)');
    assert.deepEqual(meta.normalisation, { kind: 'zscore-window', min_scale_rel: 0.001, min_scale_abs: 1e-6, clip: 10 });
    assert.equal(meta.training.source, 'synthetic');
    assert.equal(meta.training.seed, 7);
    assert.equal(meta.training.series, 4);
    assert.equal(meta.training.windows + meta.training.validation_windows, 600);
    assert.equal(meta.training.epochs, 2);
    assert.ok(Number.isFinite(meta.training.validation_loss));
    assert.ok(meta.training.range.start < meta.training.range.end);
    const parity = JSON.parse(await fs.readFile(path.join(tmp, 'a', 'parity.json'), 'utf8'));
    assert.equal(parity.count, 8);
    assert.equal(parity.inputs.length, 8);
    assert.ok(parity.inputs.every((w) => w.length === 16));
    const ref = runReference(new Uint8Array(await fs.readFile(path.join(tmp, 'a', 'model.onnx'))), parity.inputs.flat(), 8);
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(ref[i] - parity.predictions[i]) < 1e-5);
    assert.ok(a.refDiff < 1e-5);
    // another seed gives another model
    await train(parseConfig([...args(path.join(tmp, 'c')).slice(0, -1), '8']), quiet);
    assert.notEqual(sha(await fs.readFile(path.join(tmp, 'a', 'model.onnx'))), sha(await fs.readFile(path.join(tmp, 'c', 'model.onnx'))));
  } finally {
    await fs.rm(tmp, { recursive: true });
  }
});

test('CLI: csv source end to end, usage errors exit 2', async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cli-'));
  try {
    const lines = ['timestamp,value'];
    for (let i = 0; i < 300; i++) lines.push(`${1700000000 + 60 * i},${100 + 10 * Math.sin(i / 10) + (i % 7)}`);
    await fs.writeFile(path.join(tmp, 's.csv'), lines.join('\n'));
    const out = path.join(tmp, 'model');
    const { stderr } = await run(process.execPath, [script, '--out', out, '--source', 'csv', '--csv', path.join(tmp, 's.csv'),
      '--units', '4', '--dense', 'none', '--dropout', '0', '--window', '8', '--windows', '200', '--epochs', '1', '--parity', '4']);
    assert.match(stderr, /ETA/);
    assert.match(stderr, /export check/);
    const meta = JSON.parse(await fs.readFile(path.join(out, 'model.json'), 'utf8'));
    assert.equal(meta.training.source, 'csv');
    assert.equal(meta.training.series, 1);
    assert.equal(meta.training.range.start, '2023-11-14T22:13:20.000Z');
    await assert.rejects(run(process.execPath, [script, '--epochs', '1']), (err) => err.code === 2 && /--out DIR is required/.test(err.stderr));
  } finally {
    await fs.rm(tmp, { recursive: true });
  }
});
