package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"
)

// validateSchema checks the merged values against values.schema.json as Helm 3 (up to 3.17) does, with
// gojsonschema, and words a failure as Helm does.
func validateSchema(c *chart, values map[string]interface{}) error {
	if c.Schema == nil {
		return nil
	}
	asYaml, err := yaml.Marshal(values)
	if err != nil {
		return err
	}
	asJSON, err := yaml.YAMLToJSON(asYaml)
	if err != nil {
		return err
	}
	if bytes.Equal(asJSON, []byte("null")) {
		asJSON = []byte("{}")
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(c.Schema), gojsonschema.NewBytesLoader(asJSON))
	if err != nil {
		return fmt.Errorf("%s: values.schema.json: %w", c.Name, err)
	}
	if result.Valid() {
		return nil
	}
	var b strings.Builder
	for _, e := range result.Errors() {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s", c.Name, b.String())
}
