// TensorFlow.js backend selection. tfjs-node (native TensorFlow) cannot be
// installed on the build machines, so training runs on the WebAssembly backend
// (SIMD, single-threaded under Node) with the pure-JS "cpu" backend as a
// fallback. The wasm binaries are loaded from node_modules, never fetched.

import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export function wasmDir() {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + path.sep + 'dist' + path.sep;
}

// initBackend selects `name` ("wasm" or "cpu") and returns the active backend name.
export async function initBackend(name = 'wasm') {
  if (name === 'wasm') setWasmPaths(wasmDir());
  else if (name !== 'cpu') throw new Error(`unknown backend ${JSON.stringify(name)} (want wasm or cpu)`);
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`cannot initialise the tfjs ${name} backend`);
  await tf.ready();
  return tf.getBackend();
}

export { tf };
