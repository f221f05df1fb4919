{{/*
Chart name (nameOverride wins). Input: root context.
*/}}
{{- define "tpm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified name, as upstream: fullnameOverride, else the release name when it already contains the chart
name (so `helm install teleport-plugin-mattermost …` gives `teleport-plugin-mattermost`), else
<release>-<chart>. The MattermostAccessPlugin, and so the watcher Deployment, carry this name.
*/}}
{{- define "tpm.fullname" -}}
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

{{/*
Name of the operator's objects: <fullname> truncated so the "-operator" suffix always fits in 63 characters.
*/}}
{{- define "tpm.operator.fullname" -}}
{{- printf "%s-operator" (include "tpm.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{- define "tpm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels: immutable once installed, so nothing user-supplied goes here. Input: root context.
*/}}
{{- define "tpm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tpm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Common labels for every object of the release.
*/}}
{{- define "tpm.labels" -}}
helm.sh/chart: {{ include "tpm.chart" . }}
{{ include "tpm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: teleport-plugin-mattermost
{{- end -}}

{{/*
Operator labels: its own app.kubernetes.io/name, so no selector for the watcher pods (named like the chart)
can ever match the operator's pods.
*/}}
{{- define "tpm.operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tpm.name" . | trunc 54 | trimSuffix "-" }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tpm.operator.labels" -}}
helm.sh/chart: {{ include "tpm.chart" . }}
{{ include "tpm.operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: teleport-plugin-mattermost
app.kubernetes.io/component: operator
{{- end -}}

{{- define "tpm.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "tpm.operator.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- /* values.schema.json requires the name when create is false */ -}}
{{- .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The watcher image: image.repository:image.tag (tag defaults to the chart's appVersion).
*/}}
{{- define "tpm.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) -}}
{{- end -}}

{{/*
The operator image: operator.image.* where set, else image.*.
*/}}
{{- define "tpm.operator.image" -}}
{{- $repo := default .Values.image.repository .Values.operator.image.repository -}}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.operator.image.tag | toString -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/*
The Secret holding the Mattermost token: an existing one (mattermost.tokenFromSecret) or <fullname>-secret.
*/}}
{{- define "tpm.tokenSecretName" -}}
{{- default (printf "%s-secret" (include "tpm.fullname" .)) .Values.mattermost.tokenFromSecret -}}
{{- end -}}

{{/*
Log severity in the CRD's vocabulary: upstream accepts any case plus WARNING, ERR and TRACE.
Input: a severity string.
*/}}
{{- define "tpm.severity" -}}
{{- $s := upper . -}}
{{- if eq $s "WARNING" -}}WARN
{{- else if eq $s "ERR" -}}ERROR
{{- else if eq $s "TRACE" -}}DEBUG
{{- else -}}{{ $s }}
{{- end -}}
{{- end -}}

{{/*
Values the chart accepts for compatibility but cannot honour, one warning per line (shown by NOTES and put on
the MattermostAccessPlugin's teleport-plugins.dev/chart-warnings annotation, which its status repeats).
*/}}
{{- define "tpm.droppedValues" -}}
{{- $output := toString .Values.log.output -}}
{{- if not (has (lower $output) (list "" "stdout" "stderr")) -}}
log.output={{ $output }} is ignored: in Kubernetes the watcher logs to its container's stderr (read it with kubectl logs); set log.output to stderr
{{ end -}}
{{- end -}}

{{/*
Restricted pod security context (Pod Security Standard "restricted"), merged under the user's values.
Input: a dict of user overrides.
*/}}
{{- define "tpm.podSecurityContext" -}}
{{- $default := dict "runAsNonRoot" true "runAsUser" 65532 "runAsGroup" 65532 "fsGroup" 65532 "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- toYaml (mustMergeOverwrite $default (deepCopy .)) -}}
{{- end -}}

{{- define "tpm.containerSecurityContext" -}}
{{- $default := dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "runAsNonRoot" true "capabilities" (dict "drop" (list "ALL")) "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- toYaml (mustMergeOverwrite $default (deepCopy .)) -}}
{{- end -}}

{{/*
The Teleport address the plugin connects to: teleport.address, else tbot's (upstream's coalesce).
*/}}
{{- define "tpm.teleportAddress" -}}
{{- default "" (coalesce .Values.teleport.address .Values.tbot.teleportProxyAddress .Values.tbot.teleportAuthAddress) -}}
{{- end -}}

{{/*
The identity Secret and its key: teleport.identitySecretName/identitySecretPath when set, else with tbot its
output Secret <release>-tbot-out, key identity.
*/}}
{{- define "tpm.identitySecretName" -}}
{{- if .Values.teleport.identitySecretName -}}
{{- .Values.teleport.identitySecretName -}}
{{- else if .Values.tbot.enabled -}}
{{- include "tpm.tbot.outputSecret" . -}}
{{- end -}}
{{- end -}}

{{- define "tpm.identitySecretKey" -}}
{{- if or .Values.teleport.identitySecretName (not .Values.tbot.enabled) -}}
{{- .Values.teleport.identitySecretPath -}}
{{- else -}}
identity
{{- end -}}
{{- end -}}

{{/*
tbot's names, as upstream's tbot subchart names them: <release>-tbot (the ServiceAccount the join token
allows), its output Secret <release>-tbot-out, and the join token (tbot.token, default <release>-tbot).
*/}}
{{- define "tpm.tbot.fullname" -}}
{{- printf "%s-tbot" (.Release.Name | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{- define "tpm.tbot.outputSecret" -}}
{{- printf "%s-out" (include "tpm.tbot.fullname" .) -}}
{{- end -}}

{{- define "tpm.tbot.token" -}}
{{- default (include "tpm.tbot.fullname" .) .Values.tbot.token -}}
{{- end -}}

{{/*
The Teleport version whose tbot image the chart runs (tbot.teleportVersionOverride wins). Kept equal to
TBOT_TELEPORT_VERSION in operator/controller/defaults.ts (a unit test checks).
*/}}
{{- define "tpm.tbot.teleportVersion" -}}
18.2.0
{{- end -}}

{{- define "tpm.tbot.image" -}}
{{- printf "%s:%s" .Values.tbot.image (default (include "tpm.tbot.teleportVersion" .) .Values.tbot.teleportVersionOverride | toString) -}}
{{- end -}}

{{/*
tbot's labels: its own app.kubernetes.io/name, so no watcher selector matches tbot's pods.
*/}}
{{- define "tpm.tbot.selectorLabels" -}}
app.kubernetes.io/name: tbot
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tpm.tbot.labels" -}}
helm.sh/chart: {{ include "tpm.chart" . }}
{{ include "tpm.tbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: teleport-plugin-mattermost
app.kubernetes.io/component: tbot
{{- end -}}

{{/*
tbot's configuration (tbot config v2, the same document operator/controller/tbot-config.ts renders).
*/}}
{{- define "tpm.tbot.config" -}}
version: v2
{{- if .Values.tbot.teleportProxyAddress }}
proxy_server: {{ .Values.tbot.teleportProxyAddress | quote }}
{{- else }}
auth_server: {{ .Values.tbot.teleportAuthAddress | quote }}
{{- end }}
onboarding:
  join_method: {{ .Values.tbot.joinMethod | quote }}
  token: {{ include "tpm.tbot.token" . | quote }}
storage:
  type: memory
diag_addr: "0.0.0.0:3001"
{{- if .Values.tbot.debug }}
debug: true
{{- end }}
outputs:
  - type: identity
    destination:
      type: kubernetes_secret
      name: {{ include "tpm.tbot.outputSecret" . | quote }}
{{- end -}}

{{/*
Fails early, with advice, on values the chart cannot honour and the schema cannot express.
*/}}
{{- define "tpm.validate" -}}
{{- /* The rules the schema can express (required keys when mattermost.url is set, unless tbot provides the
address and the identity Secret; tbot's addresses and clusterName; the operator's ServiceAccount; Teleport's
upstream image) are in values.schema.json, so helm lint --strict applies them too. */ -}}
{{- end -}}
