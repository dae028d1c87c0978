// Synthetic training series with a fixed seed. Each series mixes a subset of the
// shapes seen in operational metrics: daily and weekly seasonality (with
// harmonics), linear trend, random-walk drift, noise of different levels
// (including heteroscedastic noise), level shifts, spikes and dips, quantised
// (integer-valued) gauges, monotone counters' rates and flat/idle series.
// Nothing here is taken from a real data set.

import { Rng } from './rng.js';

// Points per day for the simulated scrape/step intervals (1h, 30m, 15m, 10m, 5m, 1m).
const PERIODS = [24, 48, 96, 144, 288, 1440];

// makeSeries builds one series of `length` points from an Rng.
export function makeSeries(rng, length) {
  const day = rng.pick(PERIODS);
  const week = 7 * day;
  const level = Math.exp(rng.uniform(Math.log(0.5), Math.log(5000))); // 0.5 .. 5000
  const kind = rng.pick(['seasonal', 'seasonal', 'seasonal', 'trend', 'walk', 'noisy', 'flat', 'bursty']);
  const amp = level * (kind === 'flat' ? rng.uniform(0, 0.02) : rng.uniform(0.05, 0.8));
  const phase = rng.uniform(0, 2 * Math.PI);
  const harm2 = rng.uniform(0, 0.5);
  const harm3 = rng.uniform(0, 0.25);
  const weekAmp = rng.bool(0.5) ? rng.uniform(0.05, 0.4) : 0;
  const weekendDip = rng.bool(0.3) ? rng.uniform(0.1, 0.6) : 0;
  const trendPerDay = kind === 'trend' ? level * rng.uniform(-0.05, 0.1) : level * rng.uniform(-0.005, 0.01);
  const walkSd = kind === 'walk' ? level * rng.uniform(0.002, 0.02) : 0;
  const noiseRel = kind === 'noisy' ? rng.uniform(0.1, 0.5) : kind === 'flat' ? rng.uniform(0, 0.01) : rng.pick([0.005, 0.02, 0.05, 0.1]);
  const hetero = rng.bool(0.3); // noise proportional to the seasonal level
  const shiftRate = rng.bool(0.4) ? rng.uniform(1, 4) / length : 0; // expected shifts per point
  const spikeRate = kind === 'bursty' ? rng.uniform(0.01, 0.05) : rng.bool(0.5) ? rng.uniform(0.0005, 0.005) : 0;
  const quantise = level < 200 && rng.bool(0.25);
  const nonNegative = rng.bool(0.8);

  const out = new Float64Array(length);
  let walk = 0;
  let shift = 0;
  for (let t = 0; t < length; t++) {
    const dp = (2 * Math.PI * t) / day;
    let seasonal = 0;
    if (kind !== 'flat' && kind !== 'walk') {
      seasonal = Math.sin(dp + phase) + harm2 * Math.sin(2 * dp + 2 * phase) + harm3 * Math.sin(3 * dp + phase);
      seasonal *= amp;
    }
    let weekly = 1;
    if (weekAmp > 0) weekly += weekAmp * Math.sin((2 * Math.PI * t) / week + phase);
    if (weekendDip > 0 && Math.floor(t / day) % 7 >= 5) weekly *= 1 - weekendDip;
    if (walkSd > 0) walk += rng.normal(0, walkSd);
    if (shiftRate > 0 && rng.bool(shiftRate)) shift += level * rng.uniform(-0.5, 0.8);
    const base = (level + seasonal) * weekly + trendPerDay * (t / day) + walk + shift;
    const noiseSd = noiseRel * (hetero ? Math.abs(base) : level);
    let v = base + rng.normal(0, noiseSd);
    if (spikeRate > 0 && rng.bool(spikeRate)) v += level * (rng.bool(0.8) ? rng.uniform(1, 6) : -rng.uniform(0.3, 0.9));
    if (nonNegative && v < 0) v = 0;
    if (quantise) v = Math.round(v);
    out[t] = v;
  }
  return out;
}

// generateSynthetic returns `series` deterministic series of `length` points
// each: [{name, values: Float64Array, start, step}]. `start` and `step` are in
// seconds and only describe the simulated time axis.
export function generateSynthetic({ seed = 1, series = 64, length = 4096, start = 1700000000, step = 300 } = {}) {
  if (!Number.isInteger(series) || series < 1) throw new Error(`synthetic: series must be a positive integer, got ${series}`);
  if (!Number.isInteger(length) || length < 2) throw new Error(`synthetic: length must be an integer >= 2, got ${length}`);
  const master = new Rng(seed);
  const out = [];
  for (let i = 0; i < series; i++) {
    const rng = new Rng(master.fork());
    out.push({ name: `synthetic_${i}`, values: makeSeries(rng, length), start, step });
  }
  return out;
}
