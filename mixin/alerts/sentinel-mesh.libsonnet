// Self-monitoring alerts of Sentinel Mesh.
local utils = import '../lib/utils.libsonnet';

{
  local c = $._config,
  local sel = c.sentinelMeshSelector,
  local by = utils.labelList(c.instanceLabels),
  local byJob = utils.labelList(c.jobLabels),

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'sentinel-mesh',
        rules: [
          {
            alert: 'SentinelMeshDown',
            expr: 'up{%s} == 0' % sel,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Sentinel Mesh cannot be scraped.',
              description: 'Prometheus has not been able to scrape Sentinel Mesh {{ $labels.instance }} of job {{ $labels.job }} for 5 minutes.',
            },
          },
          {
            alert: 'SentinelMeshRemoteWriteErrors',
            expr: |||
              (
                sum by (%(by)s) (rate(sentinel_mesh_remote_write_requests_total{%(sel)s,code=~"4..|5.."}[5m]))
              /
                sum by (%(by)s) (rate(sentinel_mesh_remote_write_requests_total{%(sel)s}[5m]))
              ) > %(ratio)g
            ||| % { by: by, sel: sel, ratio: c.remoteWriteErrorRatio },
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh rejects remote_write requests.',
              description: 'Sentinel Mesh {{ $labels.instance }} answers {{ $value | humanizePercentage }} of remote_write requests with a 4xx or 5xx status.',
            },
          },
          {
            alert: 'SentinelMeshSamplesDropped',
            expr: |||
              (
                sum by (%(by)s, reason) (rate({__name__=~"sentinel_mesh_(remote_write_)?samples_dropped_total",%(sel)s,reason!~"%(ignored)s"}[5m]))
              / ignoring (reason) group_left
                sum by (%(by)s) (rate(sentinel_mesh_remote_write_samples_received_total{%(sel)s}[5m]))
              ) > %(ratio)g
            ||| % { by: by, sel: sel, ratio: c.samplesDroppedRatio, ignored: std.join('|', c.samplesDroppedIgnoredReasons) },
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh drops received samples.',
              description: 'Sentinel Mesh {{ $labels.instance }} drops {{ $value | humanizePercentage }} of the samples it receives for reason {{ $labels.reason }}.',
            },
          },
          {
            alert: 'SentinelMeshIngestStopped',
            expr: |||
              sum by (%(byJob)s) (rate(sentinel_mesh_remote_write_samples_received_total{%(sel)s}[%(for)s])) == 0
              or
              (time() - max by (%(byJob)s) (sentinel_mesh_last_sample_timestamp_seconds{%(sel)s})) > %(stale)d
            ||| % { byJob: byJob, sel: sel, 'for': c.ingestStoppedFor, stale: c.ingestStaleSeconds },
            'for': c.ingestStoppedFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Sentinel Mesh receives no samples.',
              description: 'Sentinel Mesh job {{ $labels.job }} has not received or scored any sample for %s: no series are being checked for anomalies.' % c.ingestStoppedFor,
            },
          },
          {
            alert: 'SentinelMeshKafkaLagGrowing',
            expr: |||
              (
                sum by (%(byJob)s, topic) (sentinel_mesh_kafka_consumer_lag{%(sel)s}) > %(lag)d
              )
              and
              (
                sum by (%(byJob)s, topic) (deriv(sentinel_mesh_kafka_consumer_lag{%(sel)s}[15m])) > 0
              )
            ||| % { byJob: byJob, sel: sel, lag: c.kafkaLagThreshold },
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh detectors fall behind on Kafka.',
              description: 'Detectors of job {{ $labels.job }} are {{ $value | humanize }} records behind on topic {{ $labels.topic }} and the lag keeps growing.',
            },
          },
          {
            alert: 'SentinelMeshModelLoadFailing',
            expr: 'increase(sentinel_mesh_model_load_failures_total{%s}[15m]) > 0' % sel,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh fails to load a model.',
              description: 'Sentinel Mesh {{ $labels.instance }} failed to load a model {{ $value | humanize }} times in the last 15 minutes; it keeps scoring with the previously loaded model, if any.',
            },
          },
          {
            alert: 'SentinelMeshModelNotLoaded',
            expr: 'sentinel_mesh_model_last_load_success_timestamp_seconds{%s} == 0' % sel,
            'for': '10m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Sentinel Mesh has no model.',
              description: 'Sentinel Mesh {{ $labels.instance }} has not loaded any model for 10 minutes: it is not ready and scores nothing.',
            },
          },
          {
            alert: 'SentinelMeshModelStale',
            expr: |||
              (time() - sentinel_mesh_model_last_load_success_timestamp_seconds{%(sel)s} > %(age)d)
              and
              sentinel_mesh_model_last_load_success_timestamp_seconds{%(sel)s} != 0
            ||| % { sel: sel, age: c.modelMaxAgeSeconds },
            'for': '1h',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh model is stale.',
              description: 'Sentinel Mesh {{ $labels.instance }} loaded its last model {{ $value | humanizeDuration }} ago; retraining does not deliver new models.',
            },
          },
          {
            alert: 'SentinelMeshSeriesLimitApproaching',
            expr: |||
              (
                max by (%(by)s) (sentinel_mesh_series_active{%(sel)s})
              /
                max by (%(by)s) (sentinel_mesh_series_limit{%(sel)s} > 0)
              ) > %(ratio)g
            ||| % { by: by, sel: sel, ratio: c.seriesLimitRatio },
            'for': '30m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh is close to its series limit.',
              description: 'Sentinel Mesh {{ $labels.instance }} tracks {{ $value | humanizePercentage }} of its series limit.',
            },
          },
          {
            alert: 'SentinelMeshSeriesLimitReached',
            expr: 'increase(sentinel_mesh_series_limit_reached_total{%s}[10m]) > 0' % sel,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh series limit reached.',
              description: 'Sentinel Mesh {{ $labels.instance }} reached its series limit; samples of new series are dropped and not scored.',
            },
          },
          {
            alert: 'SentinelMeshMetricFamiliesRefused',
            expr: 'increase(sentinel_mesh_metric_families_refused_total{%s}[10m]) > 0' % sel,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh keeps no more metric family types.',
              description: 'Sentinel Mesh {{ $labels.instance }} reached detector.max_metric_families; series of new families are typed by their names (counters on their rates) instead of their metadata.',
            },
          },
          {
            alert: 'SentinelMeshLokiPushFailing',
            expr: |||
              sum by (%(by)s) (increase(sentinel_mesh_loki_push_failures_total{%(sel)s}[10m])) > 0
              or
              sum by (%(by)s) (increase(sentinel_mesh_loki_entries_dropped_total{%(sel)s}[10m])) > 0
            ||| % { by: by, sel: sel },
            'for': c.outputFailureFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh cannot push anomaly events to Loki.',
              description: 'Sentinel Mesh {{ $labels.instance }} failed to push or dropped {{ $value | humanize }} Loki pushes/entries in the last 10 minutes; anomaly events are being lost.',
            },
          },
          {
            alert: 'SentinelMeshRemoteWriteOutputFailing',
            expr: 'sum by (%s) (increase(sentinel_mesh_remote_write_out_failures_total{%s}[10m])) > 0' % [by, sel],
            'for': c.outputFailureFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh cannot remote-write its scores.',
              description: 'Sentinel Mesh {{ $labels.instance }} failed {{ $value | humanize }} remote_write pushes of anomaly scores in the last 10 minutes.',
            },
          },
          {
            alert: 'SentinelMeshCheckpointFailing',
            expr: |||
              max by (%(by)s) (time() - sentinel_mesh_checkpoint_last_success_timestamp_seconds{%(sel)s}) > %(age)d
              and
              sum by (%(by)s) (increase(sentinel_mesh_checkpoint_failures_total{%(sel)s}[%(age)ds])) > 0
            ||| % { by: by, sel: sel, age: c.checkpointMaxAgeSeconds },
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh cannot write its checkpoint.',
              description: 'Sentinel Mesh {{ $labels.instance }} has failed to write its checkpoint for {{ $value | humanizeDuration }}; a restart would lose the series state learnt since the last one.',
            },
          },
          {
            alert: 'SentinelMeshBackfillFailing',
            expr: |||
              (
                sum by (%(by)s) (rate(sentinel_mesh_backfill_series_total{%(sel)s,outcome="failed"}[15m]))
              /
                sum by (%(by)s) (rate(sentinel_mesh_backfill_series_total{%(sel)s}[15m]))
              ) > %(ratio)g
            ||| % { by: by, sel: sel, ratio: c.backfillFailedRatio },
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh cannot backfill new series.',
              description: 'Sentinel Mesh {{ $labels.instance }} failed to read the history of {{ $value | humanizePercentage }} of the series it tried to warm from backfill.url; those series wait for their own warm-up.',
            },
          },
          {
            alert: 'SentinelMeshTenantRateLimited',
            expr: 'sum by (%s, tenant) (rate(sentinel_mesh_remote_write_tenant_samples_rate_limited_total{%s}[5m])) > 0' % [by, sel],
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Sentinel Mesh rate-limits a tenant.',
              description: 'Sentinel Mesh {{ $labels.instance }} refuses {{ $value | humanize }} samples/s of tenant {{ $labels.tenant }} with 429 (limits.max_samples_per_second); its senders retry and fall behind.',
            },
          },
        ],
      },
    ],
  },
}
