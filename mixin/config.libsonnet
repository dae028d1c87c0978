// Configuration of the Sentinel Mesh monitoring mixin. Override any field with
//   (import 'mixin.libsonnet') + { _config+:: { sentinelMeshSelector: 'job="sm"' } }
{
  _config+:: {
    // Selects Sentinel Mesh's own metrics (sentinel_mesh_*, up, process_*, go_*).
    sentinelMeshSelector: 'job="sentinel-mesh"',

    // Extra matchers for the anomaly_* output metrics. These carry the labels of the
    // scored input series (scrape Sentinel Mesh with honor_labels: true), so their
    // job label is usually not Sentinel Mesh's. Empty means every anomaly_* series.
    anomalySelector: '',

    // Labels that identify one Sentinel Mesh process / one deployment in aggregations.
    // Add e.g. 'cluster' or 'namespace' for multi-cluster setups.
    instanceLabels: ['job', 'instance'],
    jobLabels: ['job'],

    // Sentinel Mesh's detector.scoring.threshold: the score at which an anomaly opens
    // (dashboard lines and colours, the lowest severity band of AnomalyDetected). Set it
    // to your detector's threshold.
    anomalyScoreThreshold: 0.7,
    // AnomalyDetected fires while an anomaly is open on a series (anomaly_open, which
    // Sentinel Mesh exports from the sample that opened it until it closes), so it pages
    // for exactly the anomalies docs/detection.md measures. The detector already decided,
    // and an anomaly stays open at least detector.anomaly_close_after (5m): a `for` up to
    // that only delays the page.
    anomalyFor: '0m',
    // Severity bands of AnomalyDetected: one alerting rule per band, each firing while an
    // anomaly is open whose highest anomaly_score within anomalyPeakWindow is at least
    // minScore. Bands overlap on purpose (a critical anomaly is also a warning one);
    // inhibit warning by critical with equal labels in Alertmanager.
    anomalySeverities: [
      { severity: 'warning', minScore: $._config.anomalyScoreThreshold },
      { severity: 'critical', minScore: 0.9 },
    ],
    anomalyPeakWindow: '1h',
    // Labels added by Sentinel Mesh to the output series that the scored input series
    // does not have; removed when the alert description looks up the observed value.
    outputOnlyLabels: ['tenant', 'model', 'workload', 'workload_kind', 'node'],

    // Self-monitoring thresholds.
    remoteWriteErrorRatio: 0.05,  // share of remote_write requests answered with 4xx/5xx
    samplesDroppedRatio: 0.01,  // share of received samples dropped (ignoring the reasons below)
    samplesDroppedIgnoredReasons: ['unselected', 'series_limit', 'stale'],  // expected or alerted on separately
    ingestStoppedFor: '10m',  // no samples received for this long
    ingestStaleSeconds: 600,  // newest sample older than this
    kafkaLagThreshold: 100000,  // records behind per topic
    seriesLimitRatio: 0.9,  // share of the series cap in use before warning
    modelMaxAgeSeconds: 8 * 24 * 3600,  // newest successfully loaded model older than this (retraining stuck)
    outputFailureFor: '10m',
    checkpointMaxAgeSeconds: 1800,  // no successful checkpoint for this long, with failures (6 default intervals)
    backfillFailedRatio: 0.1,  // share of backfilled series whose history read failed

    // Runbook links: %s is replaced by the alert name in lower case (a heading anchor
    // of runbook.md on GitHub).
    runbookURLPattern: 'https://github.com/sentinel-mesh/sentinel-mesh/blob/main/mixin/runbook.md#%s',

    // Grafana.
    grafanaDashboardFolder: 'Sentinel Mesh',
    grafanaDashboardUIDPrefix: 'sentinel-mesh-',
    grafanaDashboardTags: ['sentinel-mesh'],
    grafanaRefresh: '30s',
    grafanaTimezone: 'utc',
  },
}
