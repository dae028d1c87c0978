{{/* Chart name. */}}
{{- define "sentinel-mesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "sentinel-mesh.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* helm.sh/chart label value. */}}
{{- define "sentinel-mesh.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of the release (all components). */}}
{{- define "sentinel-mesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sentinel-mesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Common labels. */}}
{{- define "sentinel-mesh.labels" -}}
helm.sh/chart: {{ include "sentinel-mesh.chart" . }}
{{ include "sentinel-mesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sentinel-mesh
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "receiver"). */}}
{{- define "sentinel-mesh.componentSelectorLabels" -}}
{{ include "sentinel-mesh.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component. */}}
{{- define "sentinel-mesh.componentLabels" -}}
{{ include "sentinel-mesh.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "sentinel-mesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sentinel-mesh.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Sentinel Mesh image reference. */}}
{{- define "sentinel-mesh.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Training image reference. */}}
{{- define "sentinel-mesh.trainingImage" -}}
{{- printf "%s:%s" .Values.retraining.image.repository (default .Chart.AppVersion .Values.retraining.image.tag) }}
{{- end }}

{{/* Whether a web config file is passed (TLS or basic auth or an existing config). */}}
{{- define "sentinel-mesh.webConfigEnabled" -}}
{{- if or .Values.web.tls.enabled .Values.web.basicAuth.enabled .Values.web.existingConfigSecret }}true{{ end }}
{{- end }}

{{- define "sentinel-mesh.webConfigSecretName" -}}
{{- default (printf "%s-web-config" (include "sentinel-mesh.fullname" .)) .Values.web.existingConfigSecret }}
{{- end }}

{{- define "sentinel-mesh.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "sentinel-mesh.fullname" .)) .Values.web.tls.existingSecret }}
{{- end }}

{{- define "sentinel-mesh.clientAuthSecretName" -}}
{{- printf "%s-client-auth" (include "sentinel-mesh.fullname" .) }}
{{- end }}

{{/* HTTP or HTTPS. */}}
{{- define "sentinel-mesh.scheme" -}}
{{- if .Values.web.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* Whether models live on a volume (--model.dir). */}}
{{- define "sentinel-mesh.modelVolumeEnabled" -}}
{{- if or .Values.model.persistence.enabled .Values.retraining.enabled }}true{{ end }}
{{- end }}

{{- define "sentinel-mesh.modelClaimName" -}}
{{- default (printf "%s-models" (include "sentinel-mesh.fullname" .)) .Values.model.persistence.existingClaim }}
{{- end }}

{{/* Names of the main Service and the detector Service. */}}
{{- define "sentinel-mesh.detectorServiceName" -}}
{{- printf "%s-detector" (include "sentinel-mesh.fullname" .) }}
{{- end }}

{{/* Checks values that the schema cannot express. */}}
{{- define "sentinel-mesh.validate" -}}
{{- if and (eq .Values.mode "scaled") (empty .Values.kafka.brokers) }}
{{- fail "mode=scaled needs kafka.brokers" }}
{{- end }}
{{- if and .Values.web.tls.enabled (not .Values.web.tls.existingSecret) (not .Values.web.existingConfigSecret) (or (empty .Values.web.tls.cert) (empty .Values.web.tls.key)) }}
{{- fail "web.tls.enabled needs web.tls.existingSecret or web.tls.cert and web.tls.key" }}
{{- end }}
{{- if and .Values.web.basicAuth.enabled (not .Values.web.existingConfigSecret) (empty .Values.web.basicAuth.users) }}
{{- fail "web.basicAuth.enabled needs web.basicAuth.users" }}
{{- end }}
{{- if and .Values.web.basicAuth.enabled (or (empty .Values.web.basicAuth.client.username) (empty .Values.web.basicAuth.client.password)) }}
{{- fail "web.basicAuth.enabled needs web.basicAuth.client.username and .password (used by probes and the ServiceMonitor)" }}
{{- end }}
{{- end }}

{{/* Configuration file content: chart-derived settings overridden by .Values.config. */}}
{{- define "sentinel-mesh.config" -}}
{{- $derived := dict }}
{{- if eq .Values.mode "scaled" }}
{{- /* kafka section keys of internal/config (kafka/config.go): receivers produce to
producer.topic, detectors consume consumer.topics as consumer.group. */}}
{{- $producer := dict "topic" .Values.kafka.topic }}
{{- $consumer := dict "topics" (list .Values.kafka.topic) "group" .Values.kafka.consumerGroup }}
{{- $_ := set $derived "kafka" (dict "brokers" .Values.kafka.brokers "producer" $producer "consumer" $consumer) }}
{{- end }}
{{- if .Values.kubernetes.enabled }}
{{- $_ := set $derived "kubernetes" (dict "enabled" true) }}
{{- end }}
{{- toYaml (mergeOverwrite $derived (deepCopy .Values.config)) }}
{{- end }}

{{/*
Pod template of a Sentinel Mesh workload.
(dict "root" $ "component" "receiver" "target" "receiver" "values" .Values.receiver "persistent" true)
*/}}
{{- define "sentinel-mesh.podTemplate" -}}
{{- $root := .root }}
{{- $v := .values }}
{{- $scheme := include "sentinel-mesh.scheme" $root -}}
metadata:
  labels:
    {{- include "sentinel-mesh.componentLabels" (dict "root" $root "component" .component) | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "sentinel-mesh.config" $root | sha256sum }}
    {{- if include "sentinel-mesh.webConfigEnabled" $root }}
    checksum/web-config: {{ include (print $root.Template.BasePath "/secret-web-config.yaml") $root | sha256sum }}
    {{- end }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "sentinel-mesh.serviceAccountName" $root }}
  automountServiceAccountToken: {{ or $root.Values.serviceAccount.automountServiceAccountToken $root.Values.kubernetes.enabled }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  containers:
    - name: sentinel-mesh
      image: {{ include "sentinel-mesh.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        - --target={{ .target }}
        - --config.file=/etc/sentinel-mesh/config/config.yaml
        - --web.listen-address=:{{ $root.Values.service.port }}
        - --storage.path=/data
        {{- if ne .target "receiver" }}
        - --storage.checkpoint-interval={{ $root.Values.storage.checkpointInterval }}
        {{- end }}
        - --log.level={{ $root.Values.logLevel }}
        {{- if include "sentinel-mesh.webConfigEnabled" $root }}
        - --web.config.file=/etc/sentinel-mesh/web/web-config.yml
        {{- end }}
        {{- if and (ne .target "receiver") (include "sentinel-mesh.modelVolumeEnabled" $root) }}
        - --model.dir={{ $root.Values.model.mountPath }}
        {{- end }}
        {{- range $root.Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: GOMEMLIMIT
          valueFrom:
            resourceFieldRef:
              containerName: sentinel-mesh
              resource: limits.memory
              divisor: "1"
        {{- with $root.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ $root.Values.service.port }}
          protocol: TCP
      {{- $headers := list }}
      {{- if $root.Values.web.basicAuth.enabled }}
      {{- $auth := printf "%s:%s" $root.Values.web.basicAuth.client.username $root.Values.web.basicAuth.client.password | b64enc }}
      {{- $headers = list (dict "name" "Authorization" "value" (printf "Basic %s" $auth)) }}
      {{- end }}
      startupProbe:
        httpGet:
          path: /-/healthy
          port: http
          scheme: {{ $scheme }}
          {{- with $headers }}
          httpHeaders:
            {{- toYaml . | nindent 12 }}
          {{- end }}
        {{- toYaml $root.Values.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /-/healthy
          port: http
          scheme: {{ $scheme }}
          {{- with $headers }}
          httpHeaders:
            {{- toYaml . | nindent 12 }}
          {{- end }}
        {{- toYaml $root.Values.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /-/ready
          port: http
          scheme: {{ $scheme }}
          {{- with $headers }}
          httpHeaders:
            {{- toYaml . | nindent 12 }}
          {{- end }}
        {{- toYaml $root.Values.probes.readiness | nindent 8 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/sentinel-mesh/config
          readOnly: true
        - name: data
          mountPath: /data
        - name: tmp
          mountPath: /tmp
        {{- if include "sentinel-mesh.webConfigEnabled" $root }}
        - name: web-config
          mountPath: /etc/sentinel-mesh/web
          readOnly: true
        {{- end }}
        {{- if and $root.Values.web.tls.enabled (not $root.Values.web.existingConfigSecret) }}
        - name: tls
          mountPath: /etc/sentinel-mesh/tls
          readOnly: true
        {{- end }}
        {{- if and (ne .target "receiver") (include "sentinel-mesh.modelVolumeEnabled" $root) }}
        - name: models
          mountPath: {{ $root.Values.model.mountPath }}
          readOnly: true
        {{- end }}
        {{- with $root.Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "sentinel-mesh.fullname" $root }}-config
    - name: tmp
      emptyDir: {}
    {{- if not .persistent }}
    - name: data
      emptyDir: {}
    {{- end }}
    {{- if include "sentinel-mesh.webConfigEnabled" $root }}
    - name: web-config
      secret:
        secretName: {{ include "sentinel-mesh.webConfigSecretName" $root }}
    {{- end }}
    {{- if and $root.Values.web.tls.enabled (not $root.Values.web.existingConfigSecret) }}
    - name: tls
      secret:
        secretName: {{ include "sentinel-mesh.tlsSecretName" $root }}
    {{- end }}
    {{- if and (ne .target "receiver") (include "sentinel-mesh.modelVolumeEnabled" $root) }}
    - name: models
      persistentVolumeClaim:
        claimName: {{ include "sentinel-mesh.modelClaimName" $root }}
        readOnly: true
    {{- end }}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* volumeClaimTemplates entry for the data volume. */}}
{{- define "sentinel-mesh.dataClaimTemplate" -}}
- metadata:
    name: data
    {{- with .annotations }}
    annotations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  spec:
    accessModes:
      {{- toYaml .accessModes | nindent 6 }}
    {{- with .storageClassName }}
    storageClassName: {{ . }}
    {{- end }}
    resources:
      requests:
        storage: {{ .size }}
{{- end }}
