// Per-window z-score normalisation ("zscore-window"), exactly as docs/model.md
// specifies and detector/normalise.go implements:
//
//   mean  = average of the W values
//   std   = population standard deviation of the W values
//   scale = max(std, min_scale_rel * |mean|, min_scale_abs)
//   x'_i  = clamp((x_i - mean) / scale, -clip, clip)
//
// and a prediction p maps back to expected = mean + p * scale.
// Statistics are computed in float64; the normalised values are stored as
// float32 (the model's input type).

export const DEFAULT_NORMALISATION = Object.freeze({
  kind: 'zscore-window',
  min_scale_rel: 1e-3,
  min_scale_abs: 1e-6,
  clip: 10,
});

export function validateNormalisation(p) {
  if (!p || p.kind !== 'zscore-window') throw new Error(`normalisation.kind must be "zscore-window", got ${JSON.stringify(p && p.kind)}`);
  for (const k of ['min_scale_rel', 'min_scale_abs', 'clip']) {
    if (typeof p[k] !== 'number' || !Number.isFinite(p[k]) || p[k] < 0) throw new Error(`normalisation.${k} must be a finite number >= 0, got ${p[k]}`);
  }
  if (p.min_scale_abs <= 0) throw new Error('normalisation.min_scale_abs must be > 0');
  if (p.clip <= 0) throw new Error('normalisation.clip must be > 0');
  return p;
}

function clamp(v, lo, hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

// windowStats returns {mean, std, scale} of values[offset .. offset+w).
export function windowStats(values, offset, w, p = DEFAULT_NORMALISATION) {
  let sum = 0;
  for (let i = 0; i < w; i++) sum += values[offset + i];
  const mean = sum / w;
  let ss = 0;
  for (let i = 0; i < w; i++) {
    const d = values[offset + i] - mean;
    ss += d * d;
  }
  const std = Math.sqrt(ss / w);
  const scale = Math.max(std, p.min_scale_rel * Math.abs(mean), p.min_scale_abs);
  return { mean, std, scale };
}

// normaliseValue maps one raw value with a window's mean/scale (used for the
// training target: the next value after the window).
export function normaliseValue(v, mean, scale, p = DEFAULT_NORMALISATION) {
  return clamp((v - mean) / scale, -p.clip, p.clip);
}

// denormalise maps a normalised prediction back to the series' scale.
export function denormalise(pred, mean, scale) {
  return mean + pred * scale;
}

// normaliseWindow normalises values[offset .. offset+w) into out[outOffset ..)
// (a Float32Array or plain array) and returns {mean, std, scale}.
export function normaliseWindow(values, offset, w, out, outOffset = 0, p = DEFAULT_NORMALISATION) {
  const st = windowStats(values, offset, w, p);
  for (let i = 0; i < w; i++) out[outOffset + i] = normaliseValue(values[offset + i], st.mean, st.scale, p);
  return st;
}
