{{/* The release's full name, used for every object the chart makes. */}}
{{- define "kattle.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kattle.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: kattle
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "kattle.selectorLabels" -}}
app.kubernetes.io/name: kattle-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kattle.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kattle.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kattle.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Kopf peering is only needed, and only used, with more than one replica. */}}
{{- define "kattle.peering" -}}
{{- if gt (int .Values.replicas) 1 -}}{{ include "kattle.fullname" . }}{{- end -}}
{{- end -}}

{{- define "kattle.referenceNamespaces" -}}
{{- uniq (prepend .Values.rbac.referenceNamespaces .Release.Namespace) | toJson -}}
{{- end -}}
