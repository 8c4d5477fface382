{{/*
Names and labels, as in the prometheus-community charts: everything truncated to 63 characters.
*/}}
{{- define "pickup.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pickup.fullname" -}}
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

{{- define "pickup.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades, so never the version or the chart. */}}
{{- define "pickup.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pickup.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pickup.labels" -}}
helm.sh/chart: {{ include "pickup.chart" . }}
{{ include "pickup.selectorLabels" . }}
app.kubernetes.io/version: {{ regexReplaceAll "[^A-Za-z0-9_.-]" (include "pickup.imageTag" . | splitList "@" | first) "-" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pickup
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Call with (dict "root" $ "component" "api"). */}}
{{- define "pickup.componentSelectorLabels" -}}
{{ include "pickup.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pickup.componentLabels" -}}
{{ include "pickup.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pickup.componentFullname" -}}
{{- printf "%s-%s" (include "pickup.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pickup.annotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
A component's values: the `default` block deep-merged with components.<name>. Written out
because sprig's merge/mergeOverwrite treat false, 0 and "" as unset, so a component could not
turn off what the default turns on. Maps merge key by key; anything else (lists included)
replaces. Call with (dict "base" map "override" map); returns YAML.
*/}}
{{- define "pickup.deepMerge" -}}
{{- $out := deepCopy .base }}
{{- range $key, $value := .override }}
{{- $current := get $out $key }}
{{- if and (kindIs "map" $value) (kindIs "map" $current) }}
{{- $_ := set $out $key (include "pickup.deepMerge" (dict "base" $current "override" $value) | fromYaml) }}
{{- else }}
{{- $_ := set $out $key $value }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* Call with (dict "root" $ "component" "api"); returns the merged values as YAML. */}}
{{- define "pickup.componentValues" -}}
{{- $override := get .root.Values.components .component | default dict }}
{{- include "pickup.deepMerge" (dict "base" .root.Values.default "override" $override) }}
{{- end }}

{{/* The enabled components, in a fixed order, as a list of names. */}}
{{- define "pickup.componentNames" -}}
{{- $names := list }}
{{- range $name := keys .Values.components | sortAlpha }}
{{- $c := include "pickup.componentValues" (dict "root" $ "component" $name) | fromYaml }}
{{- if $c.enabled }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{- define "pickup.serviceAccountName" -}}
{{- $c := include "pickup.componentValues" . | fromYaml }}
{{- if $c.serviceAccount.create }}
{{- default (include "pickup.componentFullname" .) $c.serviceAccount.name }}
{{- else }}
{{- default "default" $c.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image: tag defaults to appVersion; a digest wins over the tag; `latest` is refused. */}}
{{- define "pickup.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "pickup.image" -}}
{{- $tag := include "pickup.imageTag" . }}
{{- if eq $tag "latest" }}
{{- fail "image.tag: `latest` is not allowed; pin a version (or set image.digest)" }}
{{- end }}
{{- $repository := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{- define "pickup.secretName" -}}
{{- default (include "pickup.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Development services' names and URLs. */}}
{{- define "pickup.devServiceName" -}}
{{- printf "%s-%s" (include "pickup.fullname" .root) .service | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pickup.awsEndpointUrl" -}}
{{- if .Values.config.awsEndpointUrl }}
{{- .Values.config.awsEndpointUrl }}
{{- else if .Values.devServices.enabled }}
{{- printf "http://%s:5000" (include "pickup.devServiceName" (dict "root" . "service" "moto")) }}
{{- end }}
{{- end }}

{{- define "pickup.publicUrl" -}}
{{- if .Values.config.publicUrl }}
{{- .Values.config.publicUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $tls := false }}
{{- range .Values.ingress.tls }}{{ if has $host .hosts }}{{ $tls = true }}{{ end }}{{ end }}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host }}
{{- else }}
{{- printf "http://%s:%v" (include "pickup.componentFullname" (dict "root" . "component" "api")) .Values.components.api.service.port }}
{{- end }}
{{- end }}

{{/* The non-secret settings (ConfigMap data; inlined into the hook jobs). */}}
{{- define "pickup.configData" -}}
{{- $c := .Values.config }}
PICKUP_ENV: {{ $c.env | quote }}
PICKUP_LOG_LEVEL: {{ $c.logLevel | quote }}
PICKUP_LOG_FORMAT: {{ $c.logFormat | quote }}
PICKUP_TRACING_ENABLED: {{ $c.tracingEnabled | toString | quote }}
PICKUP_PUBLIC_URL: {{ include "pickup.publicUrl" . | quote }}
PICKUP_SHOP_NAME: {{ $c.shopName | quote }}
PICKUP_CURRENCY: {{ $c.currency | quote }}
PICKUP_AWS_REGION: {{ $c.awsRegion | quote }}
{{- with include "pickup.awsEndpointUrl" . }}
PICKUP_AWS_ENDPOINT_URL: {{ . | quote }}
{{- end }}
PICKUP_AWS_MAX_POOL_CONNECTIONS: {{ $c.awsMaxPoolConnections | quote }}
PICKUP_RESOURCE_PREFIX: {{ $c.resourcePrefix | quote }}
{{- with $c.ssmPath }}
PICKUP_SSM_PATH: {{ . | quote }}
{{- end }}
PICKUP_SQS_MAX_RECEIVE_COUNT: {{ $c.sqsMaxReceiveCount | quote }}
PICKUP_SQS_VISIBILITY_TIMEOUT_SECONDS: {{ $c.sqsVisibilityTimeoutSeconds | quote }}
PICKUP_SES_SENDER: {{ $c.sesSender | quote }}
PICKUP_ALARM_TOPIC: {{ $c.alarmTopic | toString | quote }}
PICKUP_RUNBOOK_BASE_URL: {{ $c.runbookBaseUrl | toString | quote }}
PICKUP_ALARM_THRESHOLDS: {{ $c.alarmThresholds | toJson | quote }}
PICKUP_ADMIN_EMAIL: {{ $c.adminEmail | quote }}
PICKUP_DB_POOL_SIZE: {{ $c.dbPoolSize | quote }}
PICKUP_DB_MAX_OVERFLOW: {{ $c.dbMaxOverflow | quote }}
PICKUP_DB_POOL_TIMEOUT_SECONDS: {{ $c.dbPoolTimeoutSeconds | quote }}
PICKUP_REDIS_MAX_CONNECTIONS: {{ $c.redisMaxConnections | quote }}
PICKUP_CART_TTL_SECONDS: {{ $c.cartTtlSeconds | quote }}
PICKUP_CART_MAX_LINES: {{ $c.cartMaxLines | quote }}
PICKUP_CART_MAX_QUANTITY: {{ $c.cartMaxQuantity | quote }}
PICKUP_RESERVATION_TTL_SECONDS: {{ $c.reservationTtlSeconds | quote }}
PICKUP_HTTP_HOST: "0.0.0.0"
PICKUP_DB_ECHO: {{ $c.dbEcho | toString | quote }}
PICKUP_TIMEZONE: {{ $c.timezone | toString | quote }}
PICKUP_OPENING_HOURS: {{ $c.openingHours | toString | quote }}
PICKUP_SLOT_MINUTES: {{ $c.slotMinutes | int64 | quote }}
PICKUP_SLOT_CAPACITY: {{ $c.slotCapacity | int64 | quote }}
PICKUP_LEAD_MINUTES: {{ $c.leadMinutes | int64 | quote }}
PICKUP_MAX_DAYS_AHEAD: {{ $c.maxDaysAhead | int64 | quote }}
PICKUP_MENU_CACHE_TTL_SECONDS: {{ $c.menuCacheTtlSeconds | int64 | quote }}
PICKUP_MENU_REVALIDATE_MS: {{ $c.menuRevalidateMs | int64 | quote }}
PICKUP_STATUS_CACHE_TTL_SECONDS: {{ $c.statusCacheTtlSeconds | int64 | quote }}
PICKUP_IDEMPOTENCY_TTL_SECONDS: {{ $c.idempotencyTtlSeconds | int64 | quote }}
PICKUP_RATE_LIMIT_CART_PER_MINUTE: {{ $c.rateLimitCartPerMinute | int64 | quote }}
PICKUP_RATE_LIMIT_CHECKOUT_PER_MINUTE: {{ $c.rateLimitCheckoutPerMinute | int64 | quote }}
PICKUP_MAX_BODY_BYTES: {{ $c.maxBodyBytes | int64 | quote }}
{{- if kindIs "bool" $c.cookieSecure }}
PICKUP_COOKIE_SECURE: {{ $c.cookieSecure | toString | quote }}
{{- end }}
PICKUP_FORWARDED_ALLOW_IPS: {{ $c.forwardedAllowIps | quote }}
PICKUP_OUTBOX_RELAY_INTERVAL_SECONDS: {{ $c.outboxRelayIntervalSeconds | float64 | quote }}
PICKUP_WORKER_CONCURRENCY: {{ $c.workerConcurrency | int64 | quote }}
PICKUP_NOTIFIER_CONCURRENCY: {{ $c.notifierConcurrency | int64 | quote }}
PICKUP_NOTIFICATION_SEND_LEASE_SECONDS: {{ $c.notificationSendLeaseSeconds | int64 | quote }}
PICKUP_PREP_MINUTES_PER_ITEM: {{ $c.prepMinutesPerItem | float64 | quote }}
PICKUP_STAFF_CAPACITY: {{ $c.staffCapacity | int64 | quote }}
PICKUP_SWEEPER_INTERVAL_SECONDS: {{ $c.sweeperIntervalSeconds | float64 | quote }}
PICKUP_RESERVATION_INTENT_GRACE_SECONDS: {{ $c.reservationIntentGraceSeconds | float64 | quote }}
PICKUP_STREAM_POLL_INTERVAL_SECONDS: {{ $c.streamPollIntervalSeconds | float64 | quote }}
PICKUP_SMS_SENDER_ID: {{ $c.smsSenderId | toString | quote }}
PICKUP_STAFF_ALERT_EMAILS: {{ $c.staffAlertEmails | toJson | quote }}
PICKUP_STAFF_ALERT_PHONES: {{ $c.staffAlertPhones | toJson | quote }}
PICKUP_SESSION_TTL_SECONDS: {{ $c.sessionTtlSeconds | int64 | quote }}
PICKUP_LOGIN_MAX_FAILURES: {{ $c.loginMaxFailures | int64 | quote }}
PICKUP_LOGIN_LOCKOUT_SECONDS: {{ $c.loginLockoutSeconds | int64 | quote }}
PICKUP_RATE_LIMIT_LOGIN_PER_MINUTE: {{ $c.rateLimitLoginPerMinute | int64 | quote }}
PICKUP_REORDER_COVER_DAYS: {{ $c.reorderCoverDays | float64 | quote }}
PICKUP_SALES_VELOCITY_DAYS: {{ $c.salesVelocityDays | int64 | quote }}
PICKUP_SSE_HEARTBEAT_SECONDS: {{ $c.sseHeartbeatSeconds | float64 | quote }}
PICKUP_LIVE_HISTORY_SIZE: {{ $c.liveHistorySize | int64 | quote }}
PICKUP_METRICS_SAMPLE_INTERVAL_SECONDS: {{ $c.metricsSampleIntervalSeconds | float64 | quote }}
PICKUP_CLOUDWATCH_METRICS_ENABLED: {{ $c.cloudwatchMetricsEnabled | toString | quote }}
PICKUP_CLOUDWATCH_NAMESPACE: {{ $c.cloudwatchNamespace | quote }}
PICKUP_CLOUDWATCH_FLUSH_INTERVAL_SECONDS: {{ $c.cloudwatchFlushIntervalSeconds | float64 | quote }}
{{- with $c.operatorNamespace }}
PICKUP_OPERATOR_NAMESPACE: {{ . | quote }}
{{- end }}
PICKUP_OPERATOR_RECONCILE_INTERVAL_SECONDS: {{ $c.operatorReconcileIntervalSeconds | float64 | quote }}
PICKUP_OPERATOR_EVENT_CHECK_SECONDS: {{ $c.operatorEventCheckSeconds | float64 | quote }}
{{- range $name, $value := $c.extraEnv }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/*
The credentials (Secret data, base64). The secret key, when not given, is generated once and
then read back from the live Secret, so upgrades keep sessions valid (helm template, which
cannot look up, renders a fresh one).
*/}}
{{- define "pickup.secretData" -}}
{{- $s := .Values.secrets }}
{{- $databaseUrl := $s.databaseUrl }}
{{- $redisUrl := $s.redisUrl }}
{{- if .Values.devServices.enabled }}
{{- $pg := .Values.devServices.postgres }}
{{- $databaseUrl = default (printf "postgresql://%s:%s@%s:5432/%s" $pg.user $pg.password (include "pickup.devServiceName" (dict "root" . "service" "postgres")) $pg.database) $databaseUrl }}
{{- $redisUrl = default (printf "redis://%s:6379/0" (include "pickup.devServiceName" (dict "root" . "service" "redis"))) $redisUrl }}
{{- end }}
{{- $secretKey := $s.secretKey }}
{{- if not $secretKey }}
{{- $live := lookup "v1" "Secret" .Release.Namespace (include "pickup.fullname" .) }}
{{- if and $live $live.data (hasKey $live.data "PICKUP_SECRET_KEY") }}
{{- $secretKey = index $live.data "PICKUP_SECRET_KEY" | b64dec }}
{{- else }}
{{- $secretKey = randAlphaNum 48 }}
{{- end }}
{{- end }}
{{- with $databaseUrl }}
PICKUP_DATABASE_URL: {{ . | b64enc | quote }}
{{- end }}
{{- with $redisUrl }}
PICKUP_REDIS_URL: {{ . | b64enc | quote }}
{{- end }}
PICKUP_SECRET_KEY: {{ $secretKey | b64enc | quote }}
{{- with $s.adminPassword }}
PICKUP_ADMIN_PASSWORD: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.awsAccessKeyId }}
PICKUP_AWS_ACCESS_KEY_ID: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.awsSecretAccessKey }}
PICKUP_AWS_SECRET_ACCESS_KEY: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/* Rules that the schema cannot express; checked once, from the ConfigMap template. */}}
{{- define "pickup.validate" -}}
{{- if eq .Values.config.env "production" }}
{{- if or .Values.secrets.awsAccessKeyId .Values.secrets.awsSecretAccessKey }}
{{- fail "secrets.awsAccessKeyId/awsSecretAccessKey: static AWS keys are refused with config.env=production; annotate the ServiceAccounts with an IAM role (IRSA) instead" }}
{{- end }}
{{- if .Values.devServices.enabled }}
{{- fail "devServices.enabled: the in-cluster PostgreSQL, Redis and moto are for development; set config.env=development or turn them off" }}
{{- end }}
{{- end }}
{{- range $name := keys .Values.components | sortAlpha }}
{{- $c := include "pickup.componentValues" (dict "root" $ "component" $name) | fromYaml }}
{{- if and $c.enabled $c.autoscaling.enabled $c.keda.enabled }}
{{- fail (printf "components.%s: autoscaling (HPA) and keda are mutually exclusive, since KEDA creates its own HPA for the workload; enable one of them" $name) }}
{{- end }}
{{- if and $c.enabled $c.keda.enabled (not $c.keda.queue) }}
{{- fail (printf "components.%s.keda.queue: name the SQS queue to scale on (order-processing, notifications)" $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pod and container hardening shared by the hook jobs and the test pod. */}}
{{- define "pickup.podSecurityContext" -}}
{{- toYaml .Values.default.podSecurityContext }}
{{- end }}

{{- define "pickup.containerSecurityContext" -}}
{{- toYaml .Values.default.securityContext }}
{{- end }}

{{/*
Checksum of the credentials' inputs (not of the rendered Secret, whose generated key differs
between renders): pods roll when a credential value changes, and only then. With
existingSecret only its name is known; roll after changing it (e.g. with Reloader).
*/}}
{{- define "pickup.secretChecksum" -}}
{{- list .Values.secrets .Values.devServices.enabled .Values.devServices.postgres | toJson | sha256sum }}
{{- end }}

{{/*
Hook phase of the jobs. Before install/upgrade normally, so the schema and AWS resources are
ready before any new pod starts. With devServices the database and moto are ordinary release
resources that do not exist yet before install, so the jobs run after install/upgrade instead.
*/}}
{{- define "pickup.hookEvents" -}}
{{- ternary "post-install,post-upgrade" "pre-install,pre-upgrade" .Values.devServices.enabled }}
{{- end }}

{{/*
Whether `pickup staff ensure-admin` runs as a hook: admin.createInitialAdmin, and a password
to create the admin with (secrets.adminPassword, or admin.existingSecretKey of
secrets.existingSecret). "true" or "".
*/}}
{{- define "pickup.ensureAdmin" -}}
{{- $a := .Values.admin }}
{{- if and $a.createInitialAdmin (ternary $a.existingSecretKey .Values.secrets.adminPassword (not (empty .Values.secrets.existingSecret))) }}true{{ end }}
{{- end }}

{{/*
The namespace the operator watches (config.operatorNamespace, else the release namespace):
its Role and, with several replicas, the KopfPeering live there.
*/}}
{{- define "pickup.operatorNamespace" -}}
{{- default .Release.Namespace .Values.config.operatorNamespace }}
{{- end }}

{{/*
Whether the operator runs several replicas, and so needs kopf's peering (the KopfPeering
`pickup`, and `--peering pickup` in its arguments). "true" or "".
*/}}
{{- define "pickup.operatorPeering" -}}
{{- $c := include "pickup.componentValues" (dict "root" . "component" "operator") | fromYaml }}
{{- if and $c.enabled (or (gt (int $c.replicas) 1) $c.autoscaling.enabled $c.keda.enabled) }}true{{ end }}
{{- end }}

{{/*
A hook job running `pickup <command>`. Call with (dict "root" $ "job" "migrate" "values"
.Values.migrations "weight" "0"). Hooks run before the release's ConfigMap and Secret exist,
so settings are inlined and credentials come from a hook-scoped Secret (or existingSecret).
*/}}
{{- define "pickup.hookJob" -}}
{{- $root := .root }}
{{- $ctx := dict "root" $root "component" .job }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "pickup.componentFullname" $ctx }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "pickup.componentLabels" $ctx | nindent 4 }}
  annotations:
    helm.sh/hook: {{ .events | default (include "pickup.hookEvents" $root) }}
    helm.sh/hook-weight: {{ .weight | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ .values.backoffLimit }}
  activeDeadlineSeconds: {{ .values.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels:
        {{- include "pickup.componentLabels" $ctx | nindent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ include "pickup.componentFullname" $ctx }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "pickup.podSecurityContext" $root | nindent 8 }}
      containers:
        - name: {{ .job }}
          image: {{ include "pickup.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml (.args | default (list .job)) | nindent 12 }}
          envFrom:
            - secretRef:
                name: {{ .secretName | default $root.Values.secrets.existingSecret | default (include "pickup.componentFullname" (dict "root" $root "component" "hooks")) }}
          env:
            {{- range $key, $value := include "pickup.configData" $root | fromYaml }}
            - name: {{ $key }}
              value: {{ $value | toString | quote }}
            {{- end }}
            {{- with .extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          securityContext:
            {{- include "pickup.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $root.Values.default.tmpSizeLimit }}
{{- end }}

{{/* The ServiceAccount of a hook job, itself a hook created just before the job. */}}
{{- define "pickup.hookServiceAccount" -}}
{{- $ctx := dict "root" .root "component" .job }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "pickup.componentFullname" $ctx }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "pickup.componentLabels" $ctx | nindent 4 }}
  annotations:
    helm.sh/hook: {{ .events | default (include "pickup.hookEvents" .root) }}
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    {{- with .annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
automountServiceAccountToken: false
{{- end }}
