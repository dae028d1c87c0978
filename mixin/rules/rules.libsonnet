// Recording rules: anomaly counts per tenant and per namespace/workload, plus a few
// self-monitoring aggregations the dashboards use.
local utils = import '../lib/utils.libsonnet';

{
  local c = $._config,
  // A series is anomalous while an anomaly is open on it (anomaly_open).
  local anomalous = 'anomaly_open{%s}' % c.anomalySelector,
  local scored = 'anomaly_score{%s}' % c.anomalySelector,
  local by = utils.labelList(c.instanceLabels),

  // count by (labels) of anomalous series, 0 (instead of no series) for groups whose
  // series are all normal.
  local countAnomalous(labels) =
    'count by (%(l)s) (%(a)s)\nor\ncount by (%(l)s) (%(s)s) * 0' % { l: utils.labelList(labels), a: anomalous, s: scored },

  prometheusRules+:: {
    groups+: [
      {
        name: 'sentinel-mesh-anomalies.rules',
        rules: [
          {
            record: 'tenant:anomaly_series:count',
            expr: 'count by (tenant) (%s)' % scored,
          },
          {
            record: 'tenant:anomaly_series_anomalous:count',
            expr: countAnomalous(['tenant']),
          },
          {
            record: 'tenant:anomaly_series_anomalous:ratio',
            expr: 'tenant:anomaly_series_anomalous:count / tenant:anomaly_series:count',
          },
          {
            record: 'tenant_namespace:anomaly_series_anomalous:count',
            expr: countAnomalous(['tenant', 'namespace']),
          },
          {
            record: 'tenant_namespace_workload:anomaly_series_anomalous:count',
            expr: countAnomalous(['tenant', 'namespace', 'workload_kind', 'workload']),
          },
          {
            record: 'tenant_namespace_workload:anomaly_score:max',
            expr: 'max by (tenant, namespace, workload_kind, workload) (%s)' % scored,
          },
        ],
      },
      {
        name: 'sentinel-mesh.rules',
        rules: [
          {
            record: 'job:sentinel_mesh_samples_received:rate5m',
            expr: 'sum by (%s) (rate(sentinel_mesh_remote_write_samples_received_total{%s}[5m]))' % [utils.labelList(c.jobLabels), c.sentinelMeshSelector],
          },
          {
            record: 'job_reason:sentinel_mesh_samples_dropped:rate5m',
            expr: 'sum by (%s, reason) (rate(sentinel_mesh_samples_dropped_total{%s}[5m]))' % [utils.labelList(c.jobLabels), c.sentinelMeshSelector],
          },
        ] + [
          {
            record: 'job:sentinel_mesh_inference_duration_seconds:%s' % q.name,
            expr: 'histogram_quantile(%g, sum by (%s, le) (rate(sentinel_mesh_inference_duration_seconds_bucket{%s}[5m])))' % [q.q, utils.labelList(c.jobLabels), c.sentinelMeshSelector],
          }
          for q in [{ name: 'p50', q: 0.5 }, { name: 'p99', q: 0.99 }]
        ],
      },
    ],
  },
}
