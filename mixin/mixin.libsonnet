// Sentinel Mesh monitoring mixin: prometheusAlerts, prometheusRules, grafanaDashboards.
local utils = import 'lib/utils.libsonnet';

local mixin =
  (import 'config.libsonnet') +
  (import 'alerts/alerts.libsonnet') +
  (import 'rules/rules.libsonnet') +
  (import 'dashboards/dashboards.libsonnet');

mixin {
  // Every alert links its runbook section.
  prometheusAlerts+:: {
    groups: utils.withRunbooks(mixin._config, super.groups),
  },
  grafanaDashboards+:: {
    [name]+: { folder:: mixin._config.grafanaDashboardFolder }
    for name in std.objectFields(super.grafanaDashboards)
  },
}
