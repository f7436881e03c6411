{{/* Chart name, "gavel" unless nameOverride. */}}
{{- define "gavel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix: fullnameOverride, else the release name when it contains the
chart name, else "<release>-<name>". With `helm install gavel` it is "gavel",
so the operator objects are named "gavel-operator" like crds/rbac.yaml.
*/}}
{{- define "gavel.fullname" -}}
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

{{/* Name of the operator's Deployment, ClusterRole and bindings. */}}
{{- define "gavel.operatorName" -}}
{{- printf "%s-operator" (include "gavel.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gavel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gavel.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gavel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of the operator pods (immutable once installed). */}}
{{- define "gavel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gavel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels of every object: the generated ones (name, component) plus Helm's. */}}
{{- define "gavel.labels" -}}
{{ include "gavel.selectorLabels" . }}
app.kubernetes.io/part-of: gavel
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "gavel.chart" . }}
{{- end }}

{{- define "gavel.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The generated RBAC (files/rbac.yaml, a byte-for-byte copy of crds/rbac.yaml
written by `gavel crds` from operator/rbac.ts), as a dict kind -> object. The
chart takes its rules from there, so there is one source of truth.
*/}}
{{- define "gavel.generatedRbac" -}}
{{- $out := dict }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" (.Files.Get "files/rbac.yaml") -1 }}
{{- $o := fromYaml $doc }}
{{- if and $o (hasKey $o "kind") }}
{{- $_ := set $out $o.kind $o }}
{{- end }}
{{- end }}
{{- range $kind := list "ClusterRole" "Role" }}
{{- if not (hasKey $out $kind) }}
{{- fail (printf "charts/gavel/files/rbac.yaml has no %s: run `node scripts/sync-chart.ts`" $kind) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
