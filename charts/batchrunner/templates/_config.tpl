{{/*
What a switched-on feature needs, checked before anything renders: a missing value fails the install with a
message naming it. values.schema.json checks each value's type and form; these are the rules across values.
*/}}
{{- define "batchrunner.validate" -}}
{{- $v := .Values }}
{{- if and (gt (int $v.replicaCount) 1) (not $v.leaderElection.enabled) }}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: more than one replica needs leader election (or set replicaCount: 1)" (int $v.replicaCount)) }}
{{- end }}
{{- if $v.leaderElection.enabled }}
{{- if ge (int $v.leaderElection.renewDeadlineSeconds) (int $v.leaderElection.leaseDurationSeconds) }}
{{- fail "leaderElection.renewDeadlineSeconds must be less than leaderElection.leaseDurationSeconds" }}
{{- end }}
{{- if ge (int $v.leaderElection.retryPeriodSeconds) (int $v.leaderElection.renewDeadlineSeconds) }}
{{- fail "leaderElection.retryPeriodSeconds must be less than leaderElection.renewDeadlineSeconds" }}
{{- end }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled (not (kindIs "string" $v.podDisruptionBudget.minAvailable)) }}
{{- if ge (int $v.podDisruptionBudget.minAvailable) (int $v.replicaCount) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be less than replicaCount (%d): a node drain could never evict a controller pod (or set podDisruptionBudget.enabled: false)" (int $v.podDisruptionBudget.minAvailable) (int $v.replicaCount)) }}
{{- end }}
{{- end }}
{{- if $v.sqs.enabled }}
{{- if not (or $v.sqs.queueUrl $v.sqs.queueName) }}
{{- fail "sqs.queueUrl is required when sqs.enabled is true (or give sqs.queueName)" }}
{{- end }}
{{- if and $v.sqs.queueUrl $v.sqs.queueName }}
{{- fail "sqs.queueUrl and sqs.queueName are both set: give one" }}
{{- end }}
{{- if and (not $v.sqs.useRedrivePolicy) (not $v.sqs.deadLetterQueueUrl) }}
{{- fail "sqs.deadLetterQueueUrl is required when sqs.useRedrivePolicy is false: refused requests must go somewhere" }}
{{- end }}
{{- end }}
{{- if $v.awsBatch.enabled }}
{{- $_ := required "awsBatch.jobQueue is required when awsBatch.enabled is true" $v.awsBatch.jobQueue }}
{{- $_ := required "awsBatch.executionRoleArn is required when awsBatch.enabled is true" $v.awsBatch.executionRoleArn }}
{{- $_ := required "awsBatch.jobRoleArn is required when awsBatch.enabled is true" $v.awsBatch.jobRoleArn }}
{{- if not $v.results.enabled }}
{{- fail "awsBatch.enabled needs results.enabled: AWS Batch jobs write their results to S3 (set results.bucket)" }}
{{- end }}
{{- end }}
{{- if $v.results.enabled }}
{{- $_ := required "results.bucket is required when results.enabled is true" $v.results.bucket }}
{{- end }}
{{- if and $v.athena.enabled (not $v.results.enabled) }}
{{- fail "athena.enabled needs results.enabled: Athena queries the results in S3 (set results.bucket)" }}
{{- end }}
{{- if and $v.s3Store.enabled (not $v.results.enabled) }}
{{- fail "s3Store.enabled needs results.enabled with results.bucket: the bucket the store is created with" }}
{{- end }}
{{- if and $v.s3Store.enabled (or $v.awsBatch.enabled $v.athena.enabled) }}
{{- fail "s3Store.enabled is for clusters without AWS: AWS Batch and Athena read results from AWS S3 (unset s3Store.enabled)" }}
{{- end }}
{{- end }}

{{/* The results store's URI, s3://bucket/prefix. */}}
{{- define "batchrunner.resultsUri" -}}
{{- $prefix := trimAll "/" .Values.results.prefix }}
{{- if $prefix }}{{ printf "s3://%s/%s" .Values.results.bucket $prefix }}{{ else }}{{ printf "s3://%s" .Values.results.bucket }}{{ end }}
{{- end }}

{{/* The image Job pods install the results wrapper from: kubernetes.execImage, else the controller's own. */}}
{{- define "batchrunner.execImage" -}}
{{- default (include "batchrunner.image" .) .Values.kubernetes.execImage }}
{{- end }}

{{/* The Secret of S3 credentials Job pods read: results.credentialsSecret, else the in-cluster store's when there is one. */}}
{{- define "batchrunner.credentialsSecret" -}}
{{- if .Values.results.credentialsSecret }}{{ .Values.results.credentialsSecret }}
{{- else if .Values.s3Store.enabled }}{{ printf "%s-s3-credentials" (include "batchrunner.fullname" .) }}
{{- end }}
{{- end }}

{{/* The controller's configuration, as environment variables (BatchRunner__Section__Key). */}}
{{- define "batchrunner.controllerEnv" -}}
{{- $v := .Values }}
- name: BatchRunner__Kubernetes__Enabled
  value: {{ $v.kubernetes.enabled | toString | quote }}
# Probes and metrics come from the kubelet and Prometheus, so the pod listens on its own address.
# Unprefixed: appsettings.json's Urls (loopback, for a checkout) outranks ASPNETCORE_URLS.
- name: Urls
  value: {{ printf "http://0.0.0.0:%d" (int $v.port) | quote }}
- name: BatchRunner__LeaderElection__Namespace
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- include "batchrunner.envvar" (list "BatchRunner__Logging__Format" $v.logging.format) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Kubernetes__Workers" $v.kubernetes.workers) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Kubernetes__Qps" $v.kubernetes.qps) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Kubernetes__Burst" $v.kubernetes.burst) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Kubernetes__TtlSecondsAfterFinished" $v.kubernetes.ttlSecondsAfterFinished) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Kubernetes__ExecImage" (include "batchrunner.execImage" .)) }}
{{- include "batchrunner.envvar" (list "BatchRunner__LeaderElection__Enabled" $v.leaderElection.enabled) }}
{{- include "batchrunner.envvar" (list "BatchRunner__LeaderElection__LeaseName" $v.leaderElection.leaseName) }}
{{- include "batchrunner.envvar" (list "BatchRunner__LeaderElection__LeaseDurationSeconds" $v.leaderElection.leaseDurationSeconds) }}
{{- include "batchrunner.envvar" (list "BatchRunner__LeaderElection__RenewDeadlineSeconds" $v.leaderElection.renewDeadlineSeconds) }}
{{- include "batchrunner.envvar" (list "BatchRunner__LeaderElection__RetryPeriodSeconds" $v.leaderElection.retryPeriodSeconds) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Dashboard__Enabled" $v.dashboard.enabled) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Dashboard__RefreshSeconds" $v.dashboard.refreshSeconds) }}
{{- include "batchrunner.envvar" (list "AWS_REGION" $v.aws.region) }}
{{- if $v.sqs.enabled }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__Enabled" true) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__QueueUrl" $v.sqs.queueUrl) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__QueueName" $v.sqs.queueName) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__Region" $v.sqs.region) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__EndpointUrl" $v.sqs.endpointUrl) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__DeadLetterQueueUrl" $v.sqs.deadLetterQueueUrl) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__UseRedrivePolicy" $v.sqs.useRedrivePolicy) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__VisibilityTimeoutSeconds" $v.sqs.visibilityTimeoutSeconds) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__MaxConcurrency" $v.sqs.maxConcurrency) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__MaxBodyBytes" $v.sqs.maxBodyBytes) }}
{{- with $v.sqs.tenants }}
{{- include "batchrunner.envlist" (list "BatchRunner__Sqs__Tenants__AllowedNamespaces" .allowedNamespaces) }}
{{- include "batchrunner.envlist" (list "BatchRunner__Sqs__Tenants__AllowedImages" .allowedImages) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__Tenants__MaxCpu" .maxCpu) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__Tenants__MaxMemory" .maxMemory) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__Tenants__MaxCompletions" .maxCompletions) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Sqs__Tenants__MaxParallelism" .maxParallelism) }}
{{- end }}
{{- end }}
{{- if $v.awsBatch.enabled }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__Enabled" true) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__JobQueue" $v.awsBatch.jobQueue) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__SpotJobQueue" $v.awsBatch.spotJobQueue) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__ExecutionRoleArn" $v.awsBatch.executionRoleArn) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__JobRoleArn" $v.awsBatch.jobRoleArn) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__Region" $v.awsBatch.region) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__EndpointUrl" $v.awsBatch.endpointUrl) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__LogGroup" $v.awsBatch.logGroup) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__ShareIdentifier" $v.awsBatch.shareIdentifier) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__FairShareByNamespace" $v.awsBatch.fairShareByNamespace) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__SubmitJobsPerSecond" $v.awsBatch.submitJobsPerSecond) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__PlatformVersion" $v.awsBatch.platformVersion) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__AssignPublicIp" $v.awsBatch.assignPublicIp) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__PollSeconds" $v.awsBatch.pollSeconds) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__MaxPollSeconds" $v.awsBatch.maxPollSeconds) }}
{{- include "batchrunner.envvar" (list "BatchRunner__AwsBatch__ExecPath" $v.awsBatch.execPath) }}
{{- end }}
{{- if $v.results.enabled }}
{{- include "batchrunner.envvar" (list "BatchRunner__Results__Uri" (include "batchrunner.resultsUri" .)) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Results__Region" $v.results.region) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Results__PartSizeBytes" $v.results.partSizeBytes) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Results__CredentialsSecret" (include "batchrunner.credentialsSecret" .)) }}
{{- if $v.s3Store.enabled }}
{{- include "batchrunner.envvar" (list "BatchRunner__Results__EndpointUrl" (include "batchrunner.s3StoreEndpoint" .)) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Results__ForcePathStyle" true) }}
{{- else }}
{{- include "batchrunner.envvar" (list "BatchRunner__Results__EndpointUrl" $v.results.endpointUrl) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Results__ForcePathStyle" $v.results.forcePathStyle) }}
{{- end }}
{{- end }}
{{- if $v.athena.enabled }}
{{- include "batchrunner.envvar" (list "BatchRunner__Athena__Database" $v.athena.database) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Athena__WorkGroup" $v.athena.workGroup) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Athena__OutputLocation" $v.athena.outputLocation) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Athena__Region" $v.athena.region) }}
{{- include "batchrunner.envvar" (list "BatchRunner__Athena__EndpointUrl" $v.athena.endpointUrl) }}
{{- end }}
{{- if $v.prices }}
{{- include "batchrunner.envvar" (list "BatchRunner__Prices__File" "/etc/batchrunner/prices/prices.json") }}
{{- end }}
{{- if $v.s3Store.enabled }}
# The in-cluster store's credentials (s3Store), from its Secret.
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "batchrunner.s3StoreName" . }}
      key: accessKey
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "batchrunner.s3StoreName" . }}
      key: secretKey
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
