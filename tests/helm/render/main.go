// Command helm-render renders a Helm 3 chart as `helm template` does, for a machine without Helm (no registry
// reachable here ships it). It uses what Helm itself is made of: Go's text/template, sprig 3.2.3 (Debian's
// golang-github-masterminds-sprig-dev, the sprig Helm 3 uses), sigs.k8s.io/yaml for toYaml and values files,
// and gojsonschema for values.schema.json (the validator Helm 3 used up to 3.17).
//
//	helm-render [--release-name N] [--namespace NS] [-f values.yaml]... [--set k=v]... [--set-string k=v]...
//	            [--kube-version 1.20.2] [--api-versions group/version[/Kind]]... [--include-crds] [--notes] CHART
//
// It prints the rendered manifests (or, with --notes, the rendered NOTES.txt) on standard output; every error
// goes to standard error prefixed "Error: ", worded as Helm words it, with exit code 1.
//
// What it does not do (the chart under test does not use it): subcharts and dependencies, .Files.Glob and
// AsConfig/AsSecrets, toToml, --set-file and --set-json, list indexes in --set keys.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", strings.TrimRight(err.Error(), "\n"))
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("helm-render", flag.ContinueOnError)
	var valueFiles, sets, setStrings, apiVersions repeated
	releaseName := fs.String("release-name", "release-name", "the release's name (helm template's default)")
	namespace := fs.String("namespace", "default", "the release's namespace")
	kubeVersion := fs.String("kube-version", defaultKubeVersion, "the Kubernetes version .Capabilities reports")
	includeCrds := fs.Bool("include-crds", false, "print the chart's crds/ files first, as they are")
	notes := fs.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	fs.Var(&valueFiles, "f", "a values file (repeatable; later ones win)")
	fs.Var(&valueFiles, "values", "a values file (repeatable; later ones win)")
	fs.Var(&sets, "set", "key=value[,key=value] (repeatable)")
	fs.Var(&setStrings, "set-string", "key=value[,key=value], always a string (repeatable)")
	fs.Var(&apiVersions, "api-versions", "an API version .Capabilities.APIVersions has (repeatable)")
	// Flags may follow the chart, as helm allows.
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 1 {
		return fmt.Errorf("expected one chart directory, got %d arguments", len(positional))
	}

	chart, err := loadChart(positional[0])
	if err != nil {
		return err
	}
	user, err := userValues(valueFiles, sets, setStrings)
	if err != nil {
		return err
	}
	values := coalesce(chart.Values, user)
	if err := validateSchema(chart, values); err != nil {
		return err
	}
	caps, err := newCapabilities(*kubeVersion, apiVersions)
	if err != nil {
		return err
	}
	if err := checkKubeVersion(chart, caps); err != nil {
		return err
	}

	rendered, err := render(chart, values, releaseInfo{Name: *releaseName, Namespace: *namespace}, caps)
	if err != nil {
		return err
	}
	if *notes {
		_, err := io.WriteString(out, rendered.Notes)
		return err
	}
	manifests, hooks, err := sortManifests(rendered.Files)
	if err != nil {
		return err
	}
	var b strings.Builder
	if *includeCrds {
		for _, crd := range chart.Crds {
			fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", crd.Name, strings.TrimRight(crd.Content, "\n"))
		}
	}
	for _, m := range append(manifests, hooks...) {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Source, m.Content)
	}
	_, err = io.WriteString(out, b.String())
	return err
}
