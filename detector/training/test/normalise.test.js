import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseWindow, windowStats, normaliseValue, denormalise, DEFAULT_NORMALISATION, validateNormalisation } from '../src/normalise.js';

test('zscore-window matches the formula of docs/model.md', () => {
  const v = [1, 2, 3, 4, 5, 6, 7, 8];
  const out = new Float32Array(8);
  const st = normaliseWindow(v, 0, 8, out);
  assert.equal(st.mean, 4.5);
  const std = Math.sqrt(v.reduce((a, x) => a + (x - 4.5) ** 2, 0) / 8); // population std
  assert.ok(Math.abs(st.std - std) < 1e-12);
  assert.equal(st.scale, std);
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(out[i] - (v[i] - 4.5) / std) < 1e-6);
  // mean 0 and unit population variance
  const m = out.reduce((a, b) => a + b, 0) / 8;
  const var_ = out.reduce((a, b) => a + (b - m) ** 2, 0) / 8;
  assert.ok(Math.abs(m) < 1e-6 && Math.abs(var_ - 1) < 1e-5);
});

test('scale floors: relative to |mean| and absolute', () => {
  const flat = Array(16).fill(1000);
  let st = windowStats(flat, 0, 16);
  assert.equal(st.std, 0);
  assert.equal(st.scale, 1000 * DEFAULT_NORMALISATION.min_scale_rel);
  const zeros = Array(16).fill(0);
  st = windowStats(zeros, 0, 16);
  assert.equal(st.scale, DEFAULT_NORMALISATION.min_scale_abs);
  const out = new Float32Array(16);
  normaliseWindow(zeros, 0, 16, out);
  assert.deepEqual(Array.from(out), Array(16).fill(0));
  // tiny wiggle around a large mean: floored by min_scale_rel
  const wig = Array.from({ length: 16 }, (_, i) => 1000 + (i % 2 ? 1e-3 : -1e-3));
  st = windowStats(wig, 0, 16);
  assert.equal(st.scale, 1);
});

test('clipping and offsets', () => {
  const v = [...Array(31).fill(0), 1000];
  const out = new Float32Array(40).fill(-99);
  const st = normaliseWindow([5, 5, ...v], 2, 32, out, 4);
  assert.equal(out[3], -99); // untouched before outOffset
  assert.ok(out[4 + 31] <= DEFAULT_NORMALISATION.clip);
  const p = { ...DEFAULT_NORMALISATION, clip: 2 };
  const o2 = new Float32Array(32);
  normaliseWindow(v, 0, 32, o2, 0, p);
  assert.equal(o2[31], 2);
  assert.equal(normaliseValue(1e9, st.mean, st.scale), DEFAULT_NORMALISATION.clip);
  assert.equal(normaliseValue(-1e9, st.mean, st.scale), -DEFAULT_NORMALISATION.clip);
  assert.equal(denormalise(0.5, 10, 4), 12);
});

test('normalisation parameters are validated', () => {
  assert.doesNotThrow(() => validateNormalisation(DEFAULT_NORMALISATION));
  assert.throws(() => validateNormalisation({ ...DEFAULT_NORMALISATION, kind: 'minmax' }), /kind/);
  assert.throws(() => validateNormalisation({ ...DEFAULT_NORMALISATION, clip: 0 }), /clip/);
  assert.throws(() => validateNormalisation({ ...DEFAULT_NORMALISATION, min_scale_abs: -1 }), /min_scale_abs/);
});
