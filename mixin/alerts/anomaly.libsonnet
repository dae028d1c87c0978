// AnomalyDetected: one rule per severity band of _config.anomalySeverities.
local utils = import '../lib/utils.libsonnet';

{
  local c = $._config,

  // Go template (Prometheus alert annotations) that builds, from the alert's labels,
  //   $sel: matchers selecting the same anomaly_* series,
  //   $obs: matchers selecting the scored input series (output-only labels removed).
  local selectorTemplate =
    local outputOnly = std.join(' ', ['(ne $k "%s")' % l for l in c.outputOnlyLabels]);
    '{{- $sel := "" -}}{{- $obs := "" -}}' +
    '{{- range $k, $v := $labels -}}' +
    '{{- if and (ne $k "__name__") (ne $k "alertname") -}}' +
    '{{- $sel = printf "%s%s=%q," $sel $k $v -}}' +
    '{{- if and (ne $k "metric") ' + outputOnly + ' -}}' +
    '{{- $obs = printf "%s%s=%q," $obs $k $v -}}' +
    '{{- end -}}' +
    '{{- end -}}' +
    '{{- end -}}',

  local queryValue(fmt, args) =
    '{{ with query (printf "%s" %s) }}{{ . | first | value | humanize }}{{ else }}n/a{{ end }}' % [fmt, args],

  local description =
    selectorTemplate +
    '{{ $labels.metric }}' +
    '{{ with $labels.workload }} of {{ $labels.workload_kind }} {{ $labels.namespace }}/{{ . }}{{ end }}' +
    '{{ with $labels.tenant }} (tenant {{ . }}){{ end }} is anomalous: score {{ printf "%.3f" $value }} from model {{ $labels.model }}.' +
    ' Observed ' + queryValue('{__name__=%q,%s}', '$labels.metric $obs') +
    ', expected ' + queryValue('anomaly_expected{%s}', '$sel') +
    ' (normal range ' + queryValue('anomaly_lower{%s}', '$sel') +
    ' to ' + queryValue('anomaly_upper{%s}', '$sel') + ').',

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'sentinel-mesh-anomalies',
        rules: [
          {
            alert: 'AnomalyDetected',
            // While the anomaly is open, its highest score within anomalyPeakWindow
            // (`and` matches anomaly_open's series, which have the score's labels). The
            // lowest band needs no score: every open anomaly reached the threshold, and
            // one open longer than the window must not resolve while open.
            expr: 'max_over_time(anomaly_score{%(s)s}[%(w)s])%(f)s\nand\nanomaly_open{%(s)s}' % {
              s: c.anomalySelector,
              w: c.anomalyPeakWindow,
              f: if band.minScore > c.anomalyScoreThreshold then ' >= %g' % band.minScore else '',
            },
            'for': c.anomalyFor,
            labels: { severity: band.severity },
            annotations: {
              summary: 'Anomalous behaviour of {{ $labels.metric }} (score {{ printf "%.2f" $value }}).',
              description: description,
            },
          }
          for band in c.anomalySeverities
        ],
      },
    ],
  },
}
