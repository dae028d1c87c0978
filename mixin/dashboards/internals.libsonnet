local g = import '../lib/grafana.libsonnet';
local utils = import '../lib/utils.libsonnet';

{
  local c = $._config,
  local sel = utils.matchers([c.sentinelMeshSelector, 'instance=~"$instance"']),
  local rate(metric, by, extra='') =
    'sum by (%s) (rate(%s{%s}[$__rate_interval]))' % [by, metric, utils.matchers([sel, extra])],
  local quantiles(metric, legendSuffix) = [
    g.target('histogram_quantile(%g, sum by (le) (rate(%s_bucket{%s}[$__rate_interval])))' % [q, metric, sel], 'p%g%s' % [q * 100, legendSuffix])
    for q in [0.5, 0.9, 0.99]
  ],

  grafanaDashboards+:: {
    'sentinel-mesh-internals.json': g.dashboard(
      c,
      'Sentinel Mesh / Internals',
      'internals',
      description='How Sentinel Mesh itself is doing: ingest, drops, inference, series, model, outputs and resources.',
      variables=[
        g.queryVariable('instance', 'Instance', 'label_values(up{%s}, instance)' % c.sentinelMeshSelector),
      ],
      panels=[
        g.row('Ingest'),
        g.timeseries('Samples received', [g.target(rate('sentinel_mesh_remote_write_samples_received_total', 'version'), 'remote_write {{version}}')],
                     unit='ops', min=0, w=8, description='Samples received per second, by remote_write protocol version.'),
        g.timeseries('Remote-write requests', [g.target(rate('sentinel_mesh_remote_write_requests_total', 'version, code'), '{{version}} {{code}}')],
                     unit='reqps', min=0, w=8, description='remote_write requests per second by protocol version and HTTP status code.'),
        g.timeseries('Samples dropped', [g.target(rate('sentinel_mesh_samples_dropped_total', 'reason'), '{{reason}}')],
                     unit='ops', min=0, w=8, stack=true, description='Samples dropped per second, by reason (out_of_order, nan, unselected, series_limit, invalid, ...).'),
        g.timeseries('Newest sample age', [g.target('time() - max by (instance) (sentinel_mesh_last_sample_timestamp_seconds{%s})' % sel, '{{instance}}')],
                     unit='s', min=0, w=8, description='Seconds since the newest received sample.'),
        g.timeseries('Rejected requests ratio',
                     [g.target('%s / ignoring(code) group_left %s' % [rate('sentinel_mesh_remote_write_requests_total', 'instance', 'code=~"4..|5.."'), rate('sentinel_mesh_remote_write_requests_total', 'instance')], '{{instance}}')],
                     unit='percentunit', min=0, w=8, description='Share of remote_write requests answered with 4xx/5xx.'),
        g.timeseries('Kafka consumer lag', [g.target('sum by (topic, partition) (sentinel_mesh_kafka_consumer_lag{%s})' % sel, '{{topic}}/{{partition}}')],
                     min=0, w=8, description='Records the detectors are behind, per topic and partition (scaled mode).'),

        g.row('Inference'),
        g.timeseries('Inference latency', quantiles('sentinel_mesh_inference_duration_seconds', ''),
                     unit='s', min=0, w=8, description='Duration of one inference batch.'),
        g.timeseries('Inference batch size',
                     quantiles('sentinel_mesh_inference_batch_size', '') + [
                       g.target('sum(rate(sentinel_mesh_inference_batch_size_sum{%s}[$__rate_interval])) / sum(rate(sentinel_mesh_inference_batch_size_count{%s}[$__rate_interval]))' % [sel, sel], 'mean'),
                     ],
                     min=0, w=8, description='Windows per inference batch.'),
        g.timeseries('Inference batches', [g.target(rate('sentinel_mesh_inference_duration_seconds_count', 'instance'), '{{instance}}')],
                     unit='ops', min=0, w=8, description='Inference batches per second.'),
        g.timeseries('Active series', [
                       g.target('sum by (instance) (sentinel_mesh_series_active{%s})' % sel, 'active {{instance}}'),
                       g.target('sum by (instance) (sentinel_mesh_series_limit{%s})' % sel, 'limit {{instance}}'),
                     ],
                     min=0, w=8, description='Series tracked by the detector, against the configured limit.'),
        g.timeseries('Series limit reached', [g.target(rate('sentinel_mesh_series_limit_reached_total', 'instance'), '{{instance}}')],
                     unit='ops', min=0, w=8, description='Times per second a new series was refused because of the series limit.'),
        g.timeseries('Open anomalies and events', [
                       g.target('sum(sentinel_mesh_anomalies_open{%s})' % sel, 'open'),
                       g.target(rate('sentinel_mesh_anomaly_events_total', 'kind'), 'events {{kind}}/s'),
                       g.target(rate('sentinel_mesh_samples_corroborated_total', 'instance'), 'corroborated {{instance}}/s'),
                       g.target(rate('sentinel_mesh_samples_uncorroborated_total', 'instance'), 'uncorroborated {{instance}}/s'),
                     ],
                     min=0, w=8, description='Anomalies open, anomaly events per second by kind, and samples per second whose score corroboration moved (detector.scoring.corroboration_lift): lifted to the threshold because another series of their target was surprising at the same time, or lowered under it because none was.'),

        g.row('Model'),
        g.table('Loaded model',
                [g.target('sentinel_mesh_model_info{%s}' % sel, instant=true, format='table')],
                w=12, h=6, description='Model version loaded by each instance.',
                transformations=[{ id: 'organize', options: { excludeByName: { Time: true, Value: true, __name__: true } } }]),
        g.timeseries('Model age', [g.target('time() - sentinel_mesh_model_last_load_success_timestamp_seconds{%s} > 0' % sel, '{{instance}}')],
                     unit='s', min=0, w=6, h=6, description='Time since each instance last loaded a model successfully.'),
        g.timeseries('Model load failures', [g.target('sum by (instance) (increase(sentinel_mesh_model_load_failures_total{%s}[$__rate_interval]))' % sel, '{{instance}}')],
                     min=0, w=6, h=6, description='Failed model loads.'),

        g.row('Outputs'),
        g.timeseries('Loki', [
                       g.target(rate('sentinel_mesh_loki_entries_dropped_total', 'reason'), 'dropped {{reason}}'),
                       g.target(rate('sentinel_mesh_loki_push_failures_total', 'instance'), 'push failures {{instance}}'),
                     ],
                     unit='ops', min=0, w=12, description='Loki entries dropped by reason and failed pushes, per second.'),
        g.timeseries('Remote-write output failures', [g.target(rate('sentinel_mesh_remote_write_out_failures_total', 'instance'), '{{instance}}')],
                     unit='ops', min=0, w=12, description='Failed remote_write pushes of the anomaly metrics, per second.'),

        g.row('Resources'),
        g.timeseries('Memory', [
                       g.target('process_resident_memory_bytes{%s}' % sel, 'RSS {{instance}}'),
                       g.target('go_memstats_heap_inuse_bytes{%s}' % sel, 'Go heap {{instance}}'),
                     ],
                     unit='bytes', min=0, w=8, description='Resident memory (includes ONNX Runtime) and Go heap in use.'),
        g.timeseries('CPU', [g.target(rate('process_cpu_seconds_total', 'instance'), '{{instance}}')],
                     unit='short', min=0, w=8, description='CPU cores used.'),
        g.timeseries('Goroutines', [g.target('go_goroutines{%s}' % sel, '{{instance}}')],
                     min=0, w=8, description='Goroutines.'),
      ],
    ),
  },
}
