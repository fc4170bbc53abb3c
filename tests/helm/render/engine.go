package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type releaseInfo struct {
	Name      string
	Namespace string
}

type renderResult struct {
	Files map[string]string // rendered templates by name, partials and NOTES.txt left out
	Notes string
}

// recursionLimit is Helm's bound on nested include/tpl calls.
const recursionLimit = 1000

// render executes every template of the chart as Helm's engine does: one template set holding every file of
// templates/ (partials included), missing keys render as nothing, files whose base name starts with "_" render
// nothing of their own, and NOTES.txt is kept apart.
func render(c *chart, values map[string]interface{}, release releaseInfo, caps *capabilities) (*renderResult, error) {
	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name":      release.Name,
			"Namespace": release.Namespace,
			"Service":   "Helm",
			"IsInstall": true,
			"IsUpgrade": false,
			"Revision":  1,
		},
		"Chart":        c.metadataForTemplates(),
		"Capabilities": caps,
		"Files":        files(c.Files),
	}

	t := template.New("gotpl").Option("missingkey=zero")
	depth := map[string]int{}
	t.Funcs(funcMap(t, depth))
	for _, f := range c.Templates {
		if _, err := t.New(f.Name).Parse(f.Content); err != nil {
			return nil, cleanupParseError(f.Name, err)
		}
	}

	result := &renderResult{Files: map[string]string{}}
	for _, f := range c.Templates {
		base := path.Base(f.Name)
		if strings.HasPrefix(base, "_") {
			continue
		}
		scope := map[string]interface{}{}
		for k, v := range top {
			scope[k] = v
		}
		scope["Template"] = map[string]interface{}{"Name": f.Name, "BasePath": c.Name + "/templates"}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, f.Name, scope); err != nil {
			return nil, cleanupExecError(f.Name, err)
		}
		// Helm's engine turns the "<no value>" of a missing key into nothing.
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			result.Notes = text
			continue
		}
		result.Files[f.Name] = text
	}
	return result, nil
}

// funcMap is Helm 3's: sprig's text functions without env and expandenv, plus Helm's own.
func funcMap(t *template.Template, depth map[string]int) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")

	f["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return "" // Helm swallows the error here too
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromYamlArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := yaml.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	f["toJson"] = func(v interface{}) string {
		data, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(data)
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromJsonArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	f["required"] = func(message string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(message)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(message)
		}
		return v, nil
	}
	// lookup asks the cluster; `helm template` has none and gets an empty map, as here.
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		if depth[name] > recursionLimit {
			return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
		}
		depth[name]++
		defer func() { depth[name]-- }()
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := t.Clone()
		if err != nil {
			return "", err
		}
		parsed, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", text, err)
		}
		var buf strings.Builder
		if err := parsed.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

var execErrorPattern = regexp.MustCompile(`^template: (.*?):(\d+):(\d+): executing .* at <.*?>: error calling \w+: (.*)$`)

// cleanupExecError words a template failure as Helm does: "execution error at (file:line:col): message",
// so a `required` or `fail` message reaches the user as written.
func cleanupExecError(name string, err error) error {
	message := err.Error()
	// The innermost failure is the last "template: ..." of a chain of include calls.
	if i := strings.LastIndex(message, "template: "); i > 0 {
		message = message[i:]
	}
	if m := execErrorPattern.FindStringSubmatch(message); m != nil {
		return fmt.Errorf("execution error at (%s:%s:%s): %s", m[1], m[2], m[3], m[4])
	}
	return fmt.Errorf("template: %s: %s", name, strings.TrimPrefix(message, "template: "))
}

func cleanupParseError(name string, err error) error {
	return fmt.Errorf("parse error at (%s): %s", name, strings.TrimPrefix(err.Error(), "template: "))
}

// filesAccessor is the part of .Files this chart may use: Get and GetBytes of a file outside templates/.
type filesAccessor map[string][]byte

func files(m map[string][]byte) filesAccessor { return filesAccessor(m) }

func (f filesAccessor) Get(name string) string      { return string(f[name]) }
func (f filesAccessor) GetBytes(name string) []byte { return f[name] }
