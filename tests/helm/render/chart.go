package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/Masterminds/semver"
	"sigs.k8s.io/yaml"
)

// chartFile is one file of the chart, named as Helm names it: "<chart>/templates/x.yaml", "<chart>/crds/y.yaml".
type chartFile struct {
	Name    string
	Content string
}

type chart struct {
	Metadata  map[string]interface{} // Chart.yaml as read
	Name      string
	Values    map[string]interface{} // values.yaml
	Schema    []byte                 // values.schema.json, or nil
	Templates []chartFile
	Crds      []chartFile
	Files     map[string][]byte // every other file, by path relative to the chart (for .Files.Get)
}

func loadChart(dir string) (*chart, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("Chart.yaml file is missing: %w", err)
	}
	c := &chart{Files: map[string][]byte{}}
	if err := yaml.Unmarshal(raw, &c.Metadata); err != nil {
		return nil, fmt.Errorf("cannot load Chart.yaml: %w", err)
	}
	name, _ := c.Metadata["name"].(string)
	if name == "" {
		return nil, fmt.Errorf("validation: chart.metadata.name is required")
	}
	if v, _ := c.Metadata["apiVersion"].(string); v != "v2" {
		return nil, fmt.Errorf("chart %s: apiVersion must be v2 (Helm 3), got %q", name, v)
	}
	version, _ := c.Metadata["version"].(string)
	if version == "" {
		return nil, fmt.Errorf("validation: chart.metadata.version is required")
	}
	if _, err := semver.StrictNewVersion(version); err != nil {
		return nil, fmt.Errorf("validation: chart.metadata.version %q is invalid", version)
	}
	c.Name = name

	c.Values = map[string]interface{}{}
	if raw, err := os.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if c.Values, err = readValues(raw); err != nil {
			return nil, fmt.Errorf("cannot load values.yaml: %w", err)
		}
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "values.schema.json")); err == nil {
		c.Schema = raw
	}

	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "templates/"):
			c.Templates = append(c.Templates, chartFile{Name: name + "/" + rel, Content: string(content)})
		case strings.HasPrefix(rel, "crds/"):
			// Helm installs every file under crds/ as it is (no templating), YAML files only.
			if ext := filepath.Ext(rel); ext == ".yaml" || ext == ".yml" || ext == ".json" {
				c.Crds = append(c.Crds, chartFile{Name: name + "/" + rel, Content: string(content)})
			}
		default:
			c.Files[rel] = content
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(c.Templates, func(i, j int) bool { return c.Templates[i].Name < c.Templates[j].Name })
	sort.Slice(c.Crds, func(i, j int) bool { return c.Crds[i].Name < c.Crds[j].Name })
	return c, nil
}

// metadataForTemplates is .Chart: Helm exposes chart.Metadata's fields by their Go names (Name, Version, AppVersion...).
func (c *chart) metadataForTemplates() map[string]interface{} {
	m := map[string]interface{}{}
	for key, value := range c.Metadata {
		m[strings.ToUpper(key[:1])+key[1:]] = value
	}
	// Helm's field for "apiVersion" is APIVersion.
	if v, ok := m["ApiVersion"]; ok {
		m["APIVersion"] = v
		delete(m, "ApiVersion")
	}
	for _, key := range []string{"Name", "Version", "AppVersion", "Description", "Type", "KubeVersion", "Home", "Icon"} {
		if _, ok := m[key]; !ok {
			m[key] = ""
		}
	}
	return m
}
