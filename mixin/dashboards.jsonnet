// Multi-file output: jsonnet -m out/dashboards dashboards.jsonnet
(import 'mixin.libsonnet').grafanaDashboards
