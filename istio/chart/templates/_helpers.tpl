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

{{/* mtls: the cluster the EnvoyFilter adds (the sidecar's own certificate, the server's SPIFFE ID
     checked); plaintext: Istio's own outbound cluster for the Service (EDS endpoints, HTTP/2 from the port name). */}}
{{- define "meshward.extProcCluster" -}}
{{- if eq .Values.server.tls.mode "mtls" -}}
{{ include "meshward.fullname" . }}-ext-proc-mtls
{{- else -}}
outbound|{{ .Values.server.port }}||{{ include "meshward.fullname" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}
{{- end -}}

{{- define "meshward.serviceHost" -}}
{{ include "meshward.fullname" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{/* Istio's SDS: the sidecar's istio-agent serves the workload certificate ("default") and the mesh
     root ("ROOTCA") on the bootstrap cluster sds-grpc. */}}
{{- define "meshward.istioSds" -}}
api_config_source:
  api_type: GRPC
  grpc_services:
  - envoy_grpc:
      cluster_name: sds-grpc
  set_node_on_first_message_only: true
  transport_api_version: V3
initial_fetch_timeout: 0s
resource_api_version: V3
{{- end -}}
