{{- define "probe.greeting" -}}
hello {{ .name }}
{{- end }}
{{- define "probe.mustHave" -}}
{{ required "mustHave is required" .Values.mustHave }}
{{- end }}
