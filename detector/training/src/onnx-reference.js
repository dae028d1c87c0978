// A small, independent float64 interpreter for the ONNX graphs that src/onnx.js
// writes (Transpose, LSTM with default activations and layout 0, Squeeze,
// MatMul, Add, Relu), following the operator definitions of the ONNX spec.
// Used to check an export against tfjs before it is written, and in tests.

import { decodeOnnx } from './onnx.js';

function tensorValues(t) {
  const raw = Buffer.from(t.raw_data.buffer, t.raw_data.byteOffset, t.raw_data.byteLength);
  const n = (t.dims || []).reduce((a, b) => a * Number(b), 1);
  if (t.data_type === 1) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = raw.readFloatLE(i * 4);
    return out;
  }
  if (t.data_type === 7) {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = Number(raw.readBigInt64LE(i * 8));
    return out;
  }
  throw new Error(`unsupported data_type ${t.data_type}`);
}

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

function attr(node, name) {
  const a = (node.attribute || []).find((x) => x.name === name);
  if (!a) return undefined;
  switch (a.type) {
    case 2: return Number(a.i);
    case 3: return Buffer.from(a.s).toString('utf8');
    case 7: return a.ints.map(Number);
    case 8: return a.strings.map((s) => Buffer.from(s).toString('utf8'));
    default: return a;
  }
}

// Tensors are {dims: number[], data: Float64Array} in row-major order.
const ops = {
  Transpose(node, [x]) {
    const perm = attr(node, 'perm');
    const dims = perm.map((p) => x.dims[p]);
    const out = new Float64Array(x.data.length);
    const inStrides = strides(x.dims);
    const outStrides = strides(dims);
    for (let i = 0; i < out.length; i++) {
      let rem = i;
      let src = 0;
      for (let d = 0; d < dims.length; d++) {
        const idx = Math.floor(rem / outStrides[d]);
        rem -= idx * outStrides[d];
        src += idx * inStrides[perm[d]];
      }
      out[i] = x.data[src];
    }
    return [{ dims, data: out }];
  },
  LSTM(node, [X, Wt, Rt, Bt]) {
    if ((attr(node, 'layout') || 0) !== 0) throw new Error('only layout 0');
    const acts = attr(node, 'activations');
    if (acts && acts.join(',') !== 'Sigmoid,Tanh,Tanh') throw new Error(`unsupported activations ${acts}`);
    const H = attr(node, 'hidden_size');
    const [T, N, I] = X.dims;
    const Wd = Wt.data; const Rd = Rt.data; const Bd = Bt ? Bt.data : new Float64Array(8 * H);
    const Y = new Float64Array(T * N * H);
    const h = new Float64Array(N * H);
    const c = new Float64Array(N * H);
    const g = new Float64Array(4 * H);
    for (let t = 0; t < T; t++) {
      const hPrev = Float64Array.from(h);
      for (let n = 0; n < N; n++) {
        for (let r = 0; r < 4 * H; r++) {
          let s = Bd[r] + Bd[4 * H + r];
          for (let k = 0; k < I; k++) s += X.data[(t * N + n) * I + k] * Wd[r * I + k];
          for (let k = 0; k < H; k++) s += hPrev[n * H + k] * Rd[r * H + k];
          g[r] = s;
        }
        for (let j = 0; j < H; j++) { // ONNX gate order i, o, f, c
          const it = sigmoid(g[j]);
          const ot = sigmoid(g[H + j]);
          const ft = sigmoid(g[2 * H + j]);
          const ct = Math.tanh(g[3 * H + j]);
          c[n * H + j] = ft * c[n * H + j] + it * ct;
          h[n * H + j] = ot * Math.tanh(c[n * H + j]);
          Y[(t * N + n) * H + j] = h[n * H + j];
        }
      }
    }
    return [{ dims: [T, 1, N, H], data: Y }, { dims: [1, N, H], data: Float64Array.from(h) }, { dims: [1, N, H], data: Float64Array.from(c) }];
  },
  Squeeze(node, [x, axesT]) {
    const axes = axesT.data.map((a) => (a < 0 ? a + x.dims.length : a));
    for (const a of axes) if (x.dims[a] !== 1) throw new Error(`Squeeze axis ${a} has size ${x.dims[a]}`);
    return [{ dims: x.dims.filter((_, i) => !axes.includes(i)), data: x.data }];
  },
  MatMul(node, [a, b]) {
    if (a.dims.length !== 2 || b.dims.length !== 2 || a.dims[1] !== b.dims[0]) throw new Error(`MatMul shapes [${a.dims}] x [${b.dims}]`);
    const [M, K] = a.dims; const Nn = b.dims[1];
    const out = new Float64Array(M * Nn);
    for (let i = 0; i < M; i++) for (let j = 0; j < Nn; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a.data[i * K + k] * b.data[k * Nn + j];
      out[i * Nn + j] = s;
    }
    return [{ dims: [M, Nn], data: out }];
  },
  Add(node, [a, b]) { // broadcasting of a [M, N] + [N] bias only
    const Nn = b.data.length;
    if (a.dims[a.dims.length - 1] !== Nn) throw new Error(`Add shapes [${a.dims}] + [${b.dims}]`);
    return [{ dims: a.dims, data: a.data.map((v, i) => v + b.data[i % Nn]) }];
  },
  Relu(node, [x]) {
    return [{ dims: x.dims, data: x.data.map((v) => (v > 0 ? v : 0)) }];
  },
};

function strides(dims) {
  const s = new Array(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) { s[i] = acc; acc *= dims[i]; }
  return s;
}

// runReference evaluates serialised ONNX bytes (or a decoded ModelProto) on
// `batch` windows in `input` (Float32Array/array, [batch, W, 1]) and returns the
// float64 predictions (length batch).
export function runReference(bytesOrModel, input, batch) {
  const model = bytesOrModel instanceof Uint8Array ? decodeOnnx(bytesOrModel) : bytesOrModel;
  const g = model.graph;
  const env = new Map();
  for (const t of g.initializer || []) env.set(t.name, { dims: (t.dims || []).map(Number), data: tensorValues(t) });
  const inName = g.input[0].name;
  const W = Number(g.input[0].type.tensor_type.shape.dim[1].dim_value);
  env.set(inName, { dims: [batch, W, 1], data: Float64Array.from(input) });
  for (const node of g.node) {
    const fn = ops[node.op_type];
    if (!fn) throw new Error(`reference: unsupported op ${node.op_type}`);
    const ins = node.input.map((n) => {
      if (n === '') return undefined;
      if (!env.has(n)) throw new Error(`reference: node ${node.name} reads undefined value ${n}`);
      return env.get(n);
    });
    const outs = fn(node, ins);
    node.output.forEach((n, i) => { if (n) env.set(n, outs[i]); });
  }
  const out = env.get(g.output[0].name);
  if (!out) throw new Error(`reference: output ${g.output[0].name} was not computed`);
  return out.data;
}
