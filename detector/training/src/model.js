// Keras-style LSTM forecaster built with tf.sequential.
//
// Reference architecture (the defaults of src/train.js):
//   LSTM(128, returnSequences) -> Dropout(0.2) -> LSTM(64) -> Dropout(0.2) -> Dense(32, relu) -> Dense(1)
// Smaller variants come from the CLI (--units 32 --dense none --dropout 0 ...).

import { tf } from './backend.js';
import { Rng } from './rng.js';

export const REFERENCE_ARCH = Object.freeze({ units: [128, 64], dense: [32], dropout: 0.2 });

// parseList parses "128,64" / "32" / "none" into an array of positive integers.
export function parseList(s, flag) {
  if (Array.isArray(s)) return s;
  const str = String(s).trim();
  if (str === '' || str === 'none' || str === '0') return [];
  return str.split(',').map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag}: ${JSON.stringify(p)} is not a positive integer`);
    return n;
  });
}

// describeArch renders the architecture string stored in model.json.
export function describeArch({ units, dense, dropout }) {
  const parts = [];
  units.forEach((u, i) => {
    parts.push(`LSTM(${u}${i < units.length - 1 ? ', return_sequences' : ''})`);
    if (dropout > 0) parts.push(`Dropout(${dropout})`);
  });
  dense.forEach((d) => parts.push(`Dense(${d}, relu)`));
  parts.push('Dense(1)');
  return parts.join(' -> ');
}

// buildModel returns an uncompiled tf.Sequential. All initialisers and dropout
// layers are seeded from `seed`.
export function buildModel({ window, units, dense = [], dropout = 0, seed = 1 }) {
  if (!Number.isInteger(window) || window < 2) throw new Error(`window must be an integer >= 2, got ${window}`);
  if (!units.length) throw new Error('at least one LSTM layer is required');
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`dropout must be in [0, 1), got ${dropout}`);
  const rng = new Rng(seed ^ 0x5eed);
  const s = () => rng.fork();
  const model = tf.sequential({ name: 'sentinel_lstm' });
  units.forEach((u, i) => {
    const cfg = {
      units: u,
      returnSequences: i < units.length - 1,
      activation: 'tanh',
      recurrentActivation: 'sigmoid',
      unitForgetBias: true,
      kernelInitializer: tf.initializers.glorotUniform({ seed: s() }),
      recurrentInitializer: tf.initializers.orthogonal({ seed: s() }),
      name: `lstm_${i}`,
    };
    if (i === 0) cfg.inputShape = [window, 1];
    model.add(tf.layers.lstm(cfg));
    if (dropout > 0) model.add(tf.layers.dropout({ rate: dropout, name: `dropout_${i}` }));
  });
  dense.forEach((d, i) => {
    model.add(tf.layers.dense({ units: d, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: s() }), name: `dense_${i}` }));
  });
  model.add(tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: s() }), name: 'prediction' }));
  return model;
}
