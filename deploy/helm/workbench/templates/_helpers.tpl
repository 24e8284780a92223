{{/* The release's base name: the release name, or release-chart when it does not contain the chart's name. */}}
{{- define "workbench.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "workbench.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Selector labels of one component: include "workbench.selector" (list . "server") */}}
{{- define "workbench.selector" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "workbench.labels" -}}
{{ include "workbench.selector" . }}
app.kubernetes.io/part-of: workbench
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
helm.sh/chart: {{ printf "%s-%s" (index . 0).Chart.Name (index . 0).Chart.Version }}
{{- end -}}

{{/* The pull of the default model's weights, shared by the app and the workers. */}}
{{- define "workbench.weights" -}}
- name: weights
  image: {{ include "workbench.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["sh", "-c", "case \"$WORKBENCH_MODEL\" in local:*) workbench models pull \"${WORKBENCH_MODEL#local:}\";; esac"]
  envFrom:
    - configMapRef: {name: {{ include "workbench.fullname" . }}-config}
  volumeMounts:
    - {name: models, mountPath: /models}
    - {name: data, mountPath: /data}
{{- end -}}

{{- define "workbench.postgresUrl" -}}
- name: WORKBENCH_POSTGRES_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.secret.name }}, key: {{ .Values.secret.postgresUrlKey }}}
{{- end -}}
