// Builds training windows: inputs are W consecutive values normalised with the
// window's own mean/scale (src/normalise.js); the target is the next value
// normalised with the same mean/scale (and clipped like the inputs).

import { normaliseWindow, normaliseValue, DEFAULT_NORMALISATION } from './normalise.js';

function finiteRange(values, offset, n) {
  for (let i = 0; i < n; i++) if (!Number.isFinite(values[offset + i])) return false;
  return true;
}

// buildWindows samples up to `count` windows uniformly over all valid
// positions of all series (without replacement when count >= positions, the
// positions are then all used). Returns {x: Float32Array(n*W), y: Float32Array(n), n}.
export function buildWindows(seriesList, { window, count, rng, normalisation = DEFAULT_NORMALISATION }) {
  if (!Number.isInteger(window) || window < 2) throw new Error(`window must be an integer >= 2, got ${window}`);
  // Valid positions: every offset whose window + target are finite.
  const positions = [];
  seriesList.forEach((s, si) => {
    const v = s.values;
    for (let o = 0; o + window < v.length; o++) {
      if (finiteRange(v, o, window + 1)) positions.push(si, o);
    }
  });
  const total = positions.length / 2;
  if (total === 0) throw new Error(`no complete window of ${window + 1} finite points in ${seriesList.length} series`);
  let idx = Array.from({ length: total }, (_, i) => i);
  rng.shuffle(idx);
  if (count && count < total) idx = idx.slice(0, count);
  const n = idx.length;
  const x = new Float32Array(n * window);
  const y = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const si = positions[2 * idx[k]];
    const o = positions[2 * idx[k] + 1];
    const v = seriesList[si].values;
    const st = normaliseWindow(v, o, window, x, k * window, normalisation);
    y[k] = normaliseValue(v[o + window], st.mean, st.scale, normalisation);
  }
  return { x, y, n, available: total };
}
