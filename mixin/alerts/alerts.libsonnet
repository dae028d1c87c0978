(import 'anomaly.libsonnet') + (import 'sentinel-mesh.libsonnet')
