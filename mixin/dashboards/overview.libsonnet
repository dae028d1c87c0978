local g = import '../lib/grafana.libsonnet';
local utils = import '../lib/utils.libsonnet';

{
  local c = $._config,
  local t = c.anomalyScoreThreshold,
  local sel = c.sentinelMeshSelector,
  local filter = utils.matchers([c.anomalySelector, 'tenant=~"$tenant"', 'namespace=~"$namespace"', 'workload=~"$workload"']),
  local ruleFilter = 'tenant=~"$tenant",namespace=~"$namespace",workload=~"$workload"',
  local seriesUID = c.grafanaDashboardUIDPrefix + 'series',

  grafanaDashboards+:: {
    'sentinel-mesh-overview.json': g.dashboard(
      c,
      'Sentinel Mesh / Overview',
      'overview',
      description='Anomalies found by Sentinel Mesh: open anomalies, the most anomalous series and workloads.',
      variables=[
        g.queryVariable('tenant', 'Tenant', 'label_values(anomaly_score{%s}, tenant)' % c.anomalySelector),
        g.queryVariable('namespace', 'Namespace', 'label_values(anomaly_score{%s}, namespace)' % utils.matchers([c.anomalySelector, 'tenant=~"$tenant"'])),
        g.queryVariable('workload', 'Workload', 'label_values(anomaly_score{%s}, workload)' % utils.matchers([c.anomalySelector, 'tenant=~"$tenant"', 'namespace=~"$namespace"'])),
      ],
      panels=[
        g.row('Summary'),
        g.stat('Open anomalies', [g.target('sum(sentinel_mesh_anomalies_open{%s})' % sel)],
               description='Anomalies currently open in Sentinel Mesh (all tenants).',
               thresholds=g.scoreThresholds(1, 10)),
        g.stat('Anomalous series', [g.target('sum(tenant_namespace_workload:anomaly_series_anomalous:count{%s})' % ruleFilter)],
               description='Series with an open anomaly (anomaly_open).',
               thresholds=g.scoreThresholds(1, 10)),
        g.stat('Scored series', [g.target('count(anomaly_score{%s})' % filter)],
               description='Series Sentinel Mesh currently scores.'),
        g.stat('Highest score', [g.target('max(anomaly_score{%s})' % filter)], unit='percentunit',
               description='Highest anomaly_score among the selected series.',
               thresholds=g.scoreThresholds(t, 0.9)),

        g.row('Anomalies'),
        g.timeseries('Anomalous series per workload',
                     [g.target('sum by (namespace, workload_kind, workload) (tenant_namespace_workload:anomaly_series_anomalous:count{%s}) > 0' % ruleFilter,
                               '{{namespace}}/{{workload}}')],
                     stack=true, min=0,
                     description='Number of series per workload with an open anomaly (anomaly_open).'),
        g.bargauge('Highest score per workload',
                   [g.target('topk(15, max by (namespace, workload) (tenant_namespace_workload:anomaly_score:max{%s}))' % ruleFilter,
                             '{{namespace}}/{{workload}}', instant=true)],
                   unit='percentunit', thresholds=g.scoreThresholds(t, 0.9),
                   description='Highest anomaly_score of each workload (top 15).'),
        g.table('Top anomalous series',
                [g.target('topk(25, anomaly_score{%s})' % filter, instant=true, format='table')],
                description='The 25 series with the highest anomaly_score. Click a metric to open the series drill-down.',
                transformations=[
                  { id: 'organize', options: { excludeByName: { Time: true, __name__: true }, renameByName: { Value: 'score' } } },
                  { id: 'sortBy', options: { sort: [{ field: 'score', desc: true }] } },
                ],
                overrides=[
                  {
                    matcher: { id: 'byName', options: 'metric' },
                    properties: [{
                      id: 'links',
                      value: [{
                        title: 'Series drill-down',
                        url: '/d/%s?${datasource:queryparam}&var-tenant=${__data.fields.tenant}&var-metric=${__data.fields.metric}&${__url_time_range}' % seriesUID,
                      }],
                    }],
                  },
                  {
                    matcher: { id: 'byName', options: 'score' },
                    properties: [
                      { id: 'unit', value: 'percentunit' },
                      { id: 'custom.cellOptions', value: { type: 'color-background' } },
                      { id: 'thresholds', value: g.scoreThresholds(t, 0.9) },
                    ],
                  },
                ]),
        g.timeseries('Anomalous share per tenant',
                     [g.target('tenant:anomaly_series_anomalous:ratio{tenant=~"$tenant"}', '{{tenant}}')],
                     unit='percentunit', min=0,
                     description='Share of scored series that are anomalous, per tenant.'),
        g.timeseries('Anomaly events',
                     [g.target('sum by (kind, cause) (rate(sentinel_mesh_anomaly_events_total{%s}[$__rate_interval]))' % sel, '{{kind}} {{cause}}')],
                     unit='ops', min=0,
                     description="Anomaly events per second, by kind (open, close) and cause: what opened the anomaly (prediction: far from the model's prediction; level: the recent level left the usual one; seasonal: unusual for the time of day)."),
      ],
    ),
  },
}
