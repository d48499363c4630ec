{{- define "meshward.fullname" -}}
{{- if contains "meshward" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-meshward" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "meshward.labels" -}}
app.kubernetes.io/name: meshward
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "meshward.selectorLabels" -}}
app.kubernetes.io/name: meshward
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "meshward.serviceAccountName" -}}
{{- default (include "meshward.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Istio's own outbound cluster for the server Service: EDS endpoints, HTTP/2 from the port name. */}}
{{- define "meshward.extProcCluster" -}}
outbound|{{ .Values.server.port }}||{{ include "meshward.fullname" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}
