local g = import '../lib/grafana.libsonnet';
local utils = import '../lib/utils.libsonnet';

{
  local c = $._config,
  local t = c.anomalyScoreThreshold,
  local filter = utils.matchers([c.anomalySelector, 'tenant=~"$tenant"', 'metric="$metric"']) + ',$selector',

  grafanaDashboards+:: {
    'sentinel-mesh-series.json': g.dashboard(
      c,
      'Sentinel Mesh / Series',
      'series',
      description='One scored series: observed value against the expected value and band, and its anomaly score.',
      variables=[
        g.queryVariable('tenant', 'Tenant', 'label_values(anomaly_score{%s}, tenant)' % c.anomalySelector),
        g.queryVariable('metric', 'Metric', 'label_values(anomaly_score{%s}, metric)' % utils.matchers([c.anomalySelector, 'tenant=~"$tenant"']), multi=false, includeAll=false),
        g.textboxVariable('selector', 'Label matchers', '',
                          'Extra PromQL label matchers of the input series, e.g. instance="web-1:9100",mode="idle". Output-only labels (tenant, model, workload, ...) do not match the observed series.'),
      ],
      annotations=[
        {
          name: 'Anomalies',
          datasource: { type: 'prometheus', uid: '${datasource}' },
          enable: true,
          hide: false,
          iconColor: 'red',
          expr: 'anomaly_open{%s}' % filter,
          step: '60s',
          titleFormat: 'Anomaly',
          textFormat: '{{metric}} anomalous (tenant {{tenant}}, model {{model}})',
          tagKeys: 'tenant,namespace,workload',
          useValueForTime: false,
        },
      ],
      panels=[
        g.timeseries('Observed vs expected',
                     [
                       g.target('{__name__="$metric",$selector}', 'observed {{instance}}'),
                       g.target('anomaly_expected{%s}' % filter, 'expected'),
                       g.target('anomaly_lower{%s}' % filter, 'lower'),
                       g.target('anomaly_upper{%s}' % filter, 'upper'),
                     ],
                     w=24, h=10,
                     description='The input series (observed), the value the model expected and the normal band [anomaly_lower, anomaly_upper]. Red annotations mark times an anomaly was open on the series (anomaly_open). Narrow the series with the label matchers variable.',
                     overrides=[
                       {
                         matcher: { id: 'byName', options: 'upper' },
                         properties: [
                           { id: 'custom.fillBelowTo', value: 'lower' },
                           { id: 'custom.lineWidth', value: 0 },
                           { id: 'color', value: { mode: 'fixed', fixedColor: 'green' } },
                         ],
                       },
                       {
                         matcher: { id: 'byName', options: 'lower' },
                         properties: [
                           { id: 'custom.lineWidth', value: 0 },
                           { id: 'custom.fillOpacity', value: 0 },
                           { id: 'color', value: { mode: 'fixed', fixedColor: 'green' } },
                         ],
                       },
                       {
                         matcher: { id: 'byName', options: 'expected' },
                         properties: [
                           { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
                           { id: 'color', value: { mode: 'fixed', fixedColor: 'blue' } },
                         ],
                       },
                     ]),
        g.timeseries('Anomaly score',
                     [g.target('anomaly_score{%s}' % filter, '{{metric}} {{model}}')],
                     unit='percentunit', min=0, max=1, w=24, h=8,
                     description='anomaly_score in [0, 1]; the line marks the alerting threshold %g.' % t) {
          fieldConfig+: { defaults+: {
            thresholds: g.scoreThresholds(t, 0.9),
            custom+: { thresholdsStyle: { mode: 'line+area' } },
          } },
        },
        g.table('Series labels',
                [g.target('anomaly_score{%s}' % filter, instant=true, format='table')],
                description='Label sets of the selected output series.',
                transformations=[{ id: 'organize', options: { excludeByName: { Time: true, __name__: true }, renameByName: { Value: 'score' } } }]),
      ],
    ),
  },
}
