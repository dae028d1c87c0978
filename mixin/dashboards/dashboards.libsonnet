(import 'overview.libsonnet') + (import 'series.libsonnet') + (import 'internals.libsonnet')
