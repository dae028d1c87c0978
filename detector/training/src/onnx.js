// Exports a tf.Sequential built by src/model.js to ONNX (opset 17).
//
// Mapping (see docs/training.md):
//   input "window" [batch, W, 1]
//   -> Transpose(perm=[1,0,2]) -> [W, batch, 1]                (ONNX LSTM layout 0)
//   -> per Keras LSTM: ONNX LSTM(hidden_size=u)
//        W = kernel^T with gate blocks reordered i,f,c,o -> i,o,f,c   [1, 4u, in]
//        R = recurrent_kernel^T, same reordering                      [1, 4u, u]
//        B = [Wb = keras bias (reordered), Rb = zeros]                [1, 8u]
//      between stacked LSTMs: Y [W,1,batch,u] -> Squeeze(axes=[1]) -> [W,batch,u]
//      after the last LSTM:   Y_h [1,batch,u] -> Squeeze(axes=[0]) -> [batch,u]
//        (Y_h is the hidden state of the last time step)
//   -> Dropout layers are dropped (identity at inference)
//   -> Dense: MatMul(kernel [in,out]) + Add(bias) (+ Relu)
//   -> output "prediction" [batch, 1]

import { onnxRoot, DataType, AttrType } from './onnx-schema.js';

export const OPSET = 17;
export const IR_VERSION = 8; // the IR version that introduced opset 17 support (ONNX 1.10+)
export const INPUT_NAME = 'window';
export const OUTPUT_NAME = 'prediction';

// Keras LSTM gate blocks are ordered i, f, c(g), o; ONNX expects i, o, f, c.
// KERAS_BLOCK_FOR_ONNX[g] is the Keras block index for ONNX block g.
export const KERAS_BLOCK_FOR_ONNX = [0, 3, 1, 2];

// reorderTranspose turns a Keras [in, 4u] matrix (row-major Float32Array) into
// the ONNX [4u, in] matrix with gate blocks reordered.
export function reorderTranspose(kernel, inDim, units) {
  const out = new Float32Array(4 * units * inDim);
  for (let g = 0; g < 4; g++) {
    const kb = KERAS_BLOCK_FOR_ONNX[g];
    for (let j = 0; j < units; j++) {
      const row = g * units + j; // ONNX row
      const col = kb * units + j; // Keras column
      for (let k = 0; k < inDim; k++) out[row * inDim + k] = kernel[k * 4 * units + col];
    }
  }
  return out;
}

export function reorderBias(bias, units) {
  const out = new Float32Array(8 * units); // Wb (reordered keras bias) then Rb (zeros)
  for (let g = 0; g < 4; g++) {
    const kb = KERAS_BLOCK_FOR_ONNX[g];
    for (let j = 0; j < units; j++) out[g * units + j] = bias[kb * units + j];
  }
  return out;
}

function floatTensor(name, dims, data) {
  if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`initializer ${name}: ${data.length} values do not fill dims ${dims}`);
  const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
  const raw = Buffer.alloc(f32.length * 4);
  for (let i = 0; i < f32.length; i++) raw.writeFloatLE(f32[i], i * 4);
  return { name, dims, data_type: DataType.FLOAT, raw_data: raw };
}

function int64Tensor(name, dims, values) {
  const raw = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), i * 8));
  return { name, dims, data_type: DataType.INT64, raw_data: raw };
}

function attrInt(name, i) {
  return { name, type: AttrType.INT, i };
}
function attrInts(name, ints) {
  return { name, type: AttrType.INTS, ints };
}
function attrString(name, s) {
  return { name, type: AttrType.STRING, s: Buffer.from(s, 'utf8') };
}
function attrStrings(name, strs) {
  return { name, type: AttrType.STRINGS, strings: strs.map((s) => Buffer.from(s, 'utf8')) };
}

function valueInfo(name, dims) {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) },
      },
    },
  };
}

// layerWeights returns the layer's weights as Float32Arrays with their shapes.
function layerWeights(layer) {
  return layer.getWeights().map((t) => ({ shape: t.shape, data: t.dataSync() }));
}

// buildGraph converts the model into a plain ModelProto object.
export function buildModelProto(model, { window, docString = '', metadata = {} } = {}) {
  const inShape = model.inputs[0].shape; // [null, W, 1]
  if (inShape.length !== 3 || inShape[2] !== 1) throw new Error(`model input shape must be [batch, W, 1], got [${inShape}]`);
  const W = inShape[1];
  if (window !== undefined && window !== W) throw new Error(`window ${window} does not match the model input length ${W}`);

  const nodes = [];
  const inits = [];
  let cur = 'window_tbf';
  let curDim = 1; // feature size of `cur`
  let seqMode = true; // cur is [W, batch, f]
  nodes.push({ name: 'to_time_major', op_type: 'Transpose', input: [INPUT_NAME], output: [cur], attribute: [attrInts('perm', [1, 0, 2])] });
  inits.push(int64Tensor('axes_1', [1], [1]));
  inits.push(int64Tensor('axes_0', [1], [0]));

  const layers = model.layers;
  const lastIdx = layers.length - 1;
  layers.forEach((layer, li) => {
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    const name = layer.name;
    if (cls === 'Dropout') return; // identity at inference
    if (cls === 'LSTM') {
      if (!seqMode) throw new Error(`layer ${name}: LSTM after a non-sequence layer is not supported`);
      if (cfg.activation !== 'tanh' || cfg.recurrentActivation !== 'sigmoid') {
        throw new Error(`layer ${name}: only activation=tanh, recurrentActivation=sigmoid map to ONNX LSTM defaults (got ${cfg.activation}/${cfg.recurrentActivation})`);
      }
      if (cfg.goBackwards || cfg.stateful) throw new Error(`layer ${name}: goBackwards/stateful LSTMs are not supported`);
      const u = cfg.units;
      const w = layerWeights(layer);
      if (w.length !== 3) throw new Error(`layer ${name}: expected kernel, recurrent kernel and bias, got ${w.length} weights`);
      const [k, r, b] = w;
      if (k.shape[0] !== curDim || k.shape[1] !== 4 * u) throw new Error(`layer ${name}: kernel shape [${k.shape}] != [${curDim}, ${4 * u}]`);
      inits.push(floatTensor(`${name}_W`, [1, 4 * u, curDim], reorderTranspose(k.data, curDim, u)));
      inits.push(floatTensor(`${name}_R`, [1, 4 * u, u], reorderTranspose(r.data, u, u)));
      inits.push(floatTensor(`${name}_B`, [1, 8 * u], reorderBias(b.data, u)));
      const y = `${name}_Y`;
      const yh = `${name}_Y_h`;
      // Only the needed output is requested: Y (all steps) feeds a stacked
      // LSTM, Y_h (last step) the head; an empty name omits an optional output.
      nodes.push({
        name, op_type: 'LSTM',
        input: [cur, `${name}_W`, `${name}_R`, `${name}_B`],
        output: cfg.returnSequences ? [y] : ['', yh],
        attribute: [attrInt('hidden_size', u), attrString('direction', 'forward'), attrInt('layout', 0),
          attrStrings('activations', ['Sigmoid', 'Tanh', 'Tanh'])],
      });
      if (cfg.returnSequences) {
        cur = `${name}_seq`;
        nodes.push({ name: `${name}_squeeze`, op_type: 'Squeeze', input: [y, 'axes_1'], output: [cur] });
      } else {
        cur = `${name}_last`;
        nodes.push({ name: `${name}_squeeze`, op_type: 'Squeeze', input: [yh, 'axes_0'], output: [cur] });
        seqMode = false;
      }
      curDim = u;
      return;
    }
    if (cls === 'Dense') {
      if (seqMode) throw new Error(`layer ${name}: Dense on a sequence is not supported (the last LSTM must not return sequences)`);
      if (cfg.activation !== 'relu' && cfg.activation !== 'linear') throw new Error(`layer ${name}: unsupported activation ${cfg.activation}`);
      const w = layerWeights(layer);
      const [k, b] = w;
      if (w.length !== 2) throw new Error(`layer ${name}: expected kernel and bias, got ${w.length} weights`);
      const out = k.shape[1];
      inits.push(floatTensor(`${name}_kernel`, [curDim, out], k.data));
      inits.push(floatTensor(`${name}_bias`, [out], b.data));
      const isLast = li === lastIdx;
      const mm = `${name}_matmul`;
      const add = isLast && cfg.activation === 'linear' ? OUTPUT_NAME : `${name}_add`;
      nodes.push({ name: `${name}_MatMul`, op_type: 'MatMul', input: [cur, `${name}_kernel`], output: [mm] });
      nodes.push({ name: `${name}_Add`, op_type: 'Add', input: [mm, `${name}_bias`], output: [add] });
      cur = add;
      if (cfg.activation === 'relu') {
        const relu = isLast ? OUTPUT_NAME : `${name}_relu`;
        nodes.push({ name: `${name}_Relu`, op_type: 'Relu', input: [add], output: [relu] });
        cur = relu;
      }
      curDim = out;
      return;
    }
    throw new Error(`layer ${name}: ${cls} layers cannot be exported`);
  });
  if (cur !== OUTPUT_NAME || curDim !== 1) throw new Error(`the model must end with Dense(1) (ends with ${cur}, width ${curDim})`);

  // Only the used axes constants are kept.
  const used = new Set(nodes.flatMap((n) => n.input));
  const initializer = inits.filter((t) => used.has(t.name));

  return {
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'sentinel-mesh-training',
    producer_version: '1',
    doc_string: docString,
    metadata_props: Object.entries(metadata).map(([key, value]) => ({ key, value: String(value) })),
    graph: {
      name: 'sentinel_lstm',
      node: nodes,
      initializer,
      input: [valueInfo(INPUT_NAME, ['batch', W, 1])],
      output: [valueInfo(OUTPUT_NAME, ['batch', 1])],
    },
  };
}

// exportOnnx returns the serialised ModelProto as a Uint8Array.
export function exportOnnx(model, opts = {}) {
  const ModelProto = onnxRoot().lookupType('onnx.ModelProto');
  const obj = buildModelProto(model, opts);
  const msg = ModelProto.fromObject(obj);
  const err = ModelProto.verify(msg);
  if (err) throw new Error(`invalid ModelProto: ${err}`);
  return ModelProto.encode(msg).finish();
}

// decodeOnnx parses serialised bytes back into a plain object (used by tests
// and by --check).
export function decodeOnnx(bytes) {
  const ModelProto = onnxRoot().lookupType('onnx.ModelProto');
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, bytes: Buffer, defaults: false });
}
