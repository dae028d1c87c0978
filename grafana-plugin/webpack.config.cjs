// Webpack configuration following @grafana/create-plugin's .config/webpack:
// AMD modules that Grafana's SystemJS loader imports, with Grafana's shared
// libraries as externals. One entry for the app and one for the nested data
// source; plugin.json files and static assets are copied into dist/.
const path = require('path');
const fs = require('fs');
const CopyWebpackPlugin = require('copy-webpack-plugin');

const pkg = require('./package.json');
const appID = require('./src/plugin.json').id;

// Shared with the Grafana runtime; never bundled (see create-plugin externals).
const externals = [
  'lodash',
  'jquery',
  'moment',
  'slate',
  'emotion',
  '@emotion/react',
  '@emotion/css',
  'prismjs',
  'slate-plain-serializer',
  '@grafana/slate-react',
  'react',
  'react-dom',
  'react-redux',
  'redux',
  'rxjs',
  'i18next',
  'react-router',
  'react-router-dom',
  'd3',
  'angular',
  '@grafana/ui',
  '@grafana/runtime',
  '@grafana/data',
  '@grafana/i18n',
  ({ request }, callback) => {
    // Grafana's own modules, e.g. grafana/app/core/...
    const prefix = 'grafana/';
    if (request && request.startsWith(prefix)) {
      return callback(undefined, request.slice(prefix.length));
    }
    callback();
  },
];

const today = new Date().toISOString().slice(0, 10);
const substitute = (content) =>
  content.toString().replace(/%VERSION%/g, pkg.version).replace(/%TODAY%/g, today);

module.exports = (env = {}) => {
  const production = Boolean(env.production);
  return {
    mode: production ? 'production' : 'development',
    devtool: production ? 'source-map' : 'eval-source-map',
    context: path.resolve(__dirname, 'src'),
    entry: {
      module: './module.ts',
      'datasource/module': './datasource/module.ts',
    },
    externals,
    output: {
      clean: { keep: /gpx_/ }, // the Go build writes the backend into dist/ too
      filename: '[name].js',
      library: { type: 'amd' },
      path: path.resolve(__dirname, 'dist'),
      publicPath: `public/plugins/${appID}/`,
      uniqueName: appID,
    },
    resolve: {
      extensions: ['.ts', '.tsx', '.js', '.jsx'],
      unsafeCache: true,
    },
    module: {
      rules: [
        {
          test: /\.[tj]sx?$/,
          exclude: /node_modules/,
          use: {
            loader: 'ts-loader',
            options: { transpileOnly: true, compilerOptions: { noEmit: false, module: 'esnext', sourceMap: !production } },
          },
        },
        { test: /\.svg$/, type: 'asset/resource', generator: { filename: 'img/[name][ext]' } },
      ],
    },
    plugins: [
      new CopyWebpackPlugin({
        patterns: [
          { from: 'plugin.json', to: '.', transform: substitute },
          { from: 'datasource/plugin.json', to: 'datasource/', transform: substitute },
          { from: 'img/*', to: '.' },
          { from: 'datasource/img/*', to: '.' },
          { from: '../README.md', to: '.' },
          { from: '../CHANGELOG.md', to: '.' },
          { from: '../LICENSE', to: '.' },
          { from: '../provisioning/dashboards/series.json', to: 'dashboards/series.json' },
        ],
      }),
    ],
    performance: { hints: false },
    optimization: { minimize: production },
    stats: production ? 'errors-warnings' : 'minimal',
  };
};
