{{/* Names and labels shared by the templates. */}}

{{- define "seccomp-recorder.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name prefixes every object the chart makes. It is cut to 52 characters, so
that the longest suffix ("-operator-metrics") keeps names within 63.
*/}}
{{- define "seccomp-recorder.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := .Values.nameOverride | default .Chart.Name }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "seccomp-recorder.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "seccomp-recorder.labels" -}}
helm.sh/chart: {{ include "seccomp-recorder.chart" . }}
app.kubernetes.io/name: {{ include "seccomp-recorder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seccomp-recorder
{{- end }}

{{- define "seccomp-recorder.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "seccomp-recorder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
The labels of the agent pods, fixed by the operator's DaemonSet builder
(operator/seccomp_recorder/operator/daemonset.py); the agents' metrics Service selects them.
*/}}
{{- define "seccomp-recorder.agentSelectorLabels" -}}
app.kubernetes.io/name: seccomp-recorder
app.kubernetes.io/component: agent
{{- end }}

{{- define "seccomp-recorder.operatorServiceAccountName" -}}
{{- .Values.operator.serviceAccount.name | default (printf "%s-operator" (include "seccomp-recorder.fullname" .)) }}
{{- end }}

{{- define "seccomp-recorder.agentServiceAccountName" -}}
{{- .Values.agent.serviceAccount.name | default (printf "%s-agent" (include "seccomp-recorder.fullname" .)) }}
{{- end }}

{{/* The ClusterKopfPeering object through which the operator's replicas coordinate. */}}
{{- define "seccomp-recorder.peeringName" -}}
{{- include "seccomp-recorder.fullname" . }}
{{- end }}

{{/* The name of the DaemonSet that the operator creates, fixed in daemonset.py. */}}
{{- define "seccomp-recorder.agentDaemonSetName" -}}
seccomp-recorder-agent
{{- end }}

{{/*
An image reference from {repository, tag, digest}: repository:tag, or
repository:tag@digest when a digest is set. The tag defaults to the appVersion.
Call with (dict "image" .Values.image.operator "context" $).
*/}}
{{- define "seccomp-recorder.image" -}}
{{- $tag := .image.tag | default .context.Chart.AppVersion }}
{{- if .image.digest }}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}
