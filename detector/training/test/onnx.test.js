import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, tf } from '../src/backend.js';
import { buildModel, describeArch, parseList } from '../src/model.js';
import { exportOnnx, decodeOnnx, reorderTranspose, reorderBias, KERAS_BLOCK_FOR_ONNX, OPSET } from '../src/onnx.js';
import { runReference } from '../src/onnx-reference.js';
import { Rng } from '../src/rng.js';

before(async () => {
  await initBackend('wasm');
});

function randomInputs(n, W, seed) {
  const r = new Rng(seed);
  return Float32Array.from({ length: n * W }, () => r.normal(0, 1.5));
}

// Randomise biases too (Keras initialises them to zeros / unit forget bias),
// so that a wrong bias mapping cannot go unnoticed.
function perturbBiases(model, seed) {
  const r = new Rng(seed);
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (!ws.length) continue;
    layer.setWeights(ws.map((w) => tf.tensor(Float32Array.from(w.dataSync(), (v) => v + r.normal(0, 0.3)), w.shape)));
  }
}

test('gate reordering i,f,c,o -> i,o,f,c and transposition', () => {
  assert.deepEqual(KERAS_BLOCK_FOR_ONNX, [0, 3, 1, 2]);
  const u = 2;
  const inDim = 3;
  // Keras kernel [in, 4u]: value = 100*gate + 10*unit + input
  const k = new Float32Array(inDim * 4 * u);
  for (let i = 0; i < inDim; i++) for (let g = 0; g < 4; g++) for (let j = 0; j < u; j++) k[i * 4 * u + g * u + j] = 100 * g + 10 * j + i;
  const w = reorderTranspose(k, inDim, u); // ONNX [4u, in]
  const onnxGates = [0, 3, 1, 2]; // ONNX block g holds Keras gate onnxGates[g]
  for (let g = 0; g < 4; g++) for (let j = 0; j < u; j++) for (let i = 0; i < inDim; i++) {
    assert.equal(w[(g * u + j) * inDim + i], 100 * onnxGates[g] + 10 * j + i);
  }
  const b = reorderBias(Float32Array.from({ length: 4 * u }, (_, i) => i + 1), u);
  assert.deepEqual(Array.from(b), [1, 2, 7, 8, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('reference architecture exports to the documented graph and matches tfjs', () => {
  const W = 12;
  const arch = { units: [16, 8], dense: [4], dropout: 0.2 };
  assert.equal(describeArch(arch), 'LSTM(16, return_sequences) -> Dropout(0.2) -> LSTM(8) -> Dropout(0.2) -> Dense(4, relu) -> Dense(1)');
  const model = buildModel({ window: W, ...arch, seed: 3 });
  perturbBiases(model, 4);
  const bytes = exportOnnx(model, { window: W, metadata: { version: 't' } });
  const m = decodeOnnx(bytes);
  assert.equal(m.ir_version, 8);
  assert.deepEqual(m.opset_import, [{ domain: '', version: OPSET }]);
  assert.equal(OPSET, 17);
  const g = m.graph;
  assert.equal(g.input.length, 1);
  assert.equal(g.input[0].name, 'window');
  assert.deepEqual(g.input[0].type.tensor_type.shape.dim, [{ dim_param: 'batch' }, { dim_value: W }, { dim_value: 1 }]);
  assert.equal(g.output[0].name, 'prediction');
  assert.deepEqual(g.output[0].type.tensor_type.shape.dim, [{ dim_param: 'batch' }, { dim_value: 1 }]);
  assert.deepEqual(g.node.map((n) => n.op_type), ['Transpose', 'LSTM', 'Squeeze', 'LSTM', 'Squeeze', 'MatMul', 'Add', 'Relu', 'MatMul', 'Add']);
  assert.ok(!g.node.some((n) => n.op_type === 'Dropout'));
  const tr = g.node[0];
  assert.deepEqual(tr.attribute.find((a) => a.name === 'perm').ints, [1, 0, 2]);
  const lstm0 = g.node[1];
  const attr = (n, k) => n.attribute.find((a) => a.name === k);
  assert.equal(attr(lstm0, 'hidden_size').i, 16);
  assert.equal(attr(lstm0, 'layout').i, 0);
  assert.deepEqual(lstm0.output, ['lstm_0_Y']);
  assert.deepEqual(g.node[3].output, ['', 'lstm_1_Y_h']);
  const init = Object.fromEntries(g.initializer.map((t) => [t.name, t]));
  assert.deepEqual(init.lstm_0_W.dims, [1, 64, 1]);
  assert.deepEqual(init.lstm_0_R.dims, [1, 64, 16]);
  assert.deepEqual(init.lstm_0_B.dims, [1, 128]);
  assert.deepEqual(init.lstm_1_W.dims, [1, 32, 16]);
  // Rb (second half of B) is zero
  const b1 = init.lstm_1_B.raw_data;
  for (let i = 32; i < 64; i++) assert.equal(b1.readFloatLE(i * 4), 0);
  // squeeze axes: num_directions between layers, then the Y_h direction axis
  assert.deepEqual(g.node[2].input, ['lstm_0_Y', 'axes_1']);
  assert.deepEqual(g.node[4].input, ['lstm_1_Y_h', 'axes_0']);
  assert.equal(g.node[9].output[0], 'prediction');

  const n = 9;
  const x = randomInputs(n, W, 11);
  const want = tf.tidy(() => model.predict(tf.tensor3d(x, [n, W, 1])).dataSync());
  const got = runReference(bytes, x, n);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-5, `window ${i}: onnx ${got[i]} tfjs ${want[i]}`);
  model.dispose();
});

test('small architecture LSTM(u) -> Dense(1)', () => {
  const W = 10;
  const model = buildModel({ window: W, units: [6], dense: [], dropout: 0, seed: 1 });
  perturbBiases(model, 2);
  const bytes = exportOnnx(model);
  const g = decodeOnnx(bytes).graph;
  assert.deepEqual(g.node.map((n) => n.op_type), ['Transpose', 'LSTM', 'Squeeze', 'MatMul', 'Add']);
  assert.equal(g.node[4].output[0], 'prediction');
  const n = 5;
  const x = randomInputs(n, W, 3);
  const want = tf.tidy(() => model.predict(tf.tensor3d(x, [n, W, 1])).dataSync());
  const got = runReference(bytes, x, n);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-5);
  // A wrong gate order would be detected: swap f and o in the exported R and compare.
  const m = decodeOnnx(bytes);
  const R = m.graph.initializer.find((t) => t.name === 'lstm_0_R');
  const u = 6;
  const raw = Buffer.from(R.raw_data);
  const blk = u * u * 4;
  const o = Buffer.from(raw.subarray(blk, 2 * blk));
  raw.copy(raw, blk, 2 * blk, 3 * blk);
  o.copy(raw, 2 * blk);
  R.raw_data = raw;
  const bad = runReference(m, x, n);
  assert.ok(bad.some((v, i) => Math.abs(v - want[i]) > 1e-4), 'swapping gates changed nothing');
  model.dispose();
});

test('export rejects what it cannot map', () => {
  const m = tf.sequential();
  m.add(tf.layers.lstm({ units: 4, inputShape: [8, 1], activation: 'relu', recurrentActivation: 'sigmoid' }));
  m.add(tf.layers.dense({ units: 1 }));
  assert.throws(() => exportOnnx(m), /activation=tanh/);
  const m2 = tf.sequential();
  m2.add(tf.layers.lstm({ units: 4, inputShape: [8, 1], recurrentActivation: 'sigmoid' }));
  m2.add(tf.layers.dense({ units: 3 }));
  assert.throws(() => exportOnnx(m2), /must end with Dense\(1\)/);
  const m3 = tf.sequential();
  m3.add(tf.layers.lstm({ units: 4, inputShape: [8, 1], recurrentActivation: 'sigmoid' }));
  m3.add(tf.layers.batchNormalization());
  m3.add(tf.layers.dense({ units: 1 }));
  assert.throws(() => exportOnnx(m3), /cannot be exported/);
  assert.throws(() => exportOnnx(buildModel({ window: 8, units: [4], seed: 1 }), { window: 9 }), /does not match/);
});

test('parseList', () => {
  assert.deepEqual(parseList('128,64', 'units'), [128, 64]);
  assert.deepEqual(parseList('none', 'dense'), []);
  assert.throws(() => parseList('3,x', 'units'), /--units/);
});
