{{/* Names and labels. */}}
{{- define "vision-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vision-proxy.fullname" -}}
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

{{- define "vision-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vision-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vision-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vision-proxy.labels" -}}
helm.sh/chart: {{ include "vision-proxy.chart" . }}
{{ include "vision-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ include "vision-proxy.tag" . | quote }}
app.kubernetes.io/component: proxy
app.kubernetes.io/part-of: vision-proxy
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "vision-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vision-proxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "vision-proxy.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "vision-proxy.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository (include "vision-proxy.tag" .) .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "vision-proxy.tag" .) }}
{{- end }}
{{- end }}

{{/* The Secret the pods read: the user's, or the chart's. */}}
{{- define "vision-proxy.secretName" -}}
{{- default (include "vision-proxy.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "vision-proxy.configDir" -}}/etc/vision-proxy{{- end }}
{{- define "vision-proxy.dataDir" -}}/var/lib/vision-proxy{{- end }}

{{/* Several pods at once (rolling updates aside)? */}}
{{- define "vision-proxy.multiReplica" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/*
A generated secret value that survives upgrades: the value already in the chart's Secret if there is one
(lookup; empty under `helm template`), else a new one. Args: (list $ "key" "generated value").
*/}}
{{- define "vision-proxy.keptSecret" -}}
{{- $ := index . 0 }}
{{- $key := index . 1 }}
{{- $existing := lookup "v1" "Secret" $.Release.Namespace (include "vision-proxy.fullname" $) }}
{{- $data := dig "data" (dict) ($existing | default (dict)) }}
{{- if hasKey $data $key }}
{{- index $data $key | b64dec }}
{{- else }}
{{- index . 2 }}
{{- end }}
{{- end }}

{{/* Settings combinations that cannot work: fail the render with a message that says what to do. */}}
{{- define "vision-proxy.validate" -}}
{{- $store := .Values.resultStore }}
{{- if and (include "vision-proxy.multiReplica" .) (eq $store.type "local") (not .Values.persistence.enabled) }}
{{- fail "several replicas (replicaCount > 1 or autoscaling) with resultStore.type=local need one shared volume: set persistence.enabled=true with a ReadWriteMany class (e.g. EFS), or use resultStore.type=s3" }}
{{- end }}
{{- if and (include "vision-proxy.multiReplica" .) (eq $store.type "local") .Values.persistence.enabled (not .Values.persistence.existingClaim) (not (has "ReadWriteMany" .Values.persistence.accessModes)) }}
{{- fail "several replicas share the data volume: persistence.accessModes must include ReadWriteMany" }}
{{- end }}
{{- if and (eq $store.type "s3") (not $store.s3.bucket) }}
{{- fail "resultStore.type=s3 needs resultStore.s3.bucket" }}
{{- end }}
{{- if and $store.signingKey (lt (len $store.signingKey) 16) }}
{{- fail "resultStore.signingKey: use at least 16 characters (e.g. openssl rand -base64 32)" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret with tls.crt and tls.key)" }}
{{- end }}
{{- if and .Values.shadow.enabled (not .Values.existingSecret) (not .Values.shadow.keys) }}
{{- fail "shadow.enabled needs shadow.keys (callerAccessKeyId=AliyunKeyId:AliyunSecret lines) or existingSecret" }}
{{- end }}
{{- if and .Values.redis.enabled (not .Values.existingSecret) (not .Values.redis.url) }}
{{- fail "redis.enabled needs redis.url (redis:// or rediss://) or existingSecret" }}
{{- end }}
{{- if and .Values.serviceAccount.roleArn (not (regexMatch "^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/.+" .Values.serviceAccount.roleArn)) }}
{{- fail (printf "serviceAccount.roleArn %q is not an IAM role ARN (arn:aws-cn:iam::<account>:role/<name> in China)" .Values.serviceAccount.roleArn) }}
{{- end }}
{{- end }}

{{/* PromQL label matchers for this release's series. */}}
{{- define "vision-proxy.promSelector" -}}
{{- if .Values.metrics.prometheusRule.selector }}
{{- .Values.metrics.prometheusRule.selector }}
{{- else }}
{{- printf "job=%q,namespace=%q" (include "vision-proxy.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}
