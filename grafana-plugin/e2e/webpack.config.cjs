// Bundles the app page with a stand-in for @grafana/runtime so a headless
// browser can render it against a live Sentinel Mesh (see serve.mjs).
const path = require('path');
const webpack = require('webpack');

module.exports = {
  mode: 'development',
  devtool: false,
  entry: path.resolve(__dirname, 'harness.tsx'),
  output: { path: path.resolve(__dirname, 'dist'), filename: 'harness.js', clean: true },
  resolve: {
    extensions: ['.ts', '.tsx', '.js', '.jsx', '.mjs'],
    alias: { '@grafana/runtime$': path.resolve(__dirname, 'runtime-shim.tsx') },
  },
  module: {
    rules: [
      {
        test: /\.tsx?$/,
        exclude: /node_modules/,
        use: { loader: 'ts-loader', options: { transpileOnly: true, compilerOptions: { noEmit: false, module: 'esnext' } } },
      },
      { test: /\.m?js$/, resolve: { fullySpecified: false } },
      { test: /\.css$/, type: 'asset/source' },
      { test: /\.(svg|png|woff2?)$/, type: 'asset/inline' },
    ],
  },
  plugins: [new webpack.optimize.LimitChunkCountPlugin({ maxChunks: 1 })],
  performance: { hints: false },
  stats: 'errors-warnings',
};
