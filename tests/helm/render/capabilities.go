package main

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver"
)

// defaultKubeVersion is what `helm template` reports without a cluster (Helm 3.16 is built against 1.31).
const defaultKubeVersion = "1.31.0"

// kubeVersion is .Capabilities.KubeVersion.
type kubeVersion struct {
	Version    string // v1.20.2
	Major      string
	Minor      string
	GitVersion string
}

func (v kubeVersion) String() string { return v.Version }

// apiVersions is .Capabilities.APIVersions: Has("policy/v1") or Has("policy/v1/PodDisruptionBudget").
type apiVersions []string

func (a apiVersions) Has(version string) bool {
	for _, v := range a {
		if v == version {
			return true
		}
	}
	return false
}

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions apiVersions
	HelmVersion map[string]string
}

// builtinVersions stands in for the group versions Helm compiles in from client-go (the ones charts ask about).
var builtinVersions = []string{
	"v1", "apps/v1", "batch/v1", "policy/v1", "policy/v1beta1", "rbac.authorization.k8s.io/v1",
	"apiextensions.k8s.io/v1", "coordination.k8s.io/v1", "networking.k8s.io/v1", "autoscaling/v2",
	"events.k8s.io/v1", "storage.k8s.io/v1", "admissionregistration.k8s.io/v1",
}

func newCapabilities(version string, extra []string) (*capabilities, error) {
	v, err := semver.NewVersion(version)
	if err != nil {
		return nil, fmt.Errorf("invalid kube version %q: %w", version, err)
	}
	return &capabilities{
		KubeVersion: kubeVersion{
			Version:    "v" + v.String(),
			Major:      fmt.Sprint(v.Major()),
			Minor:      fmt.Sprint(v.Minor()),
			GitVersion: "v" + v.String(),
		},
		APIVersions: append(append(apiVersions{}, builtinVersions...), extra...),
		HelmVersion: map[string]string{"Version": "v3.16.0"},
	}, nil
}

// checkKubeVersion refuses a cluster outside Chart.yaml's kubeVersion range, as Helm does before rendering.
func checkKubeVersion(c *chart, caps *capabilities) error {
	constraint, _ := c.Metadata["kubeVersion"].(string)
	if strings.TrimSpace(constraint) == "" {
		return nil
	}
	ranges, err := semver.NewConstraint(constraint)
	if err != nil {
		return fmt.Errorf("chart %s: invalid kubeVersion %q: %w", c.Name, constraint, err)
	}
	v, err := semver.NewVersion(caps.KubeVersion.Version)
	if err != nil {
		return err
	}
	if !ranges.Check(v) {
		return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", constraint, caps.KubeVersion.Version)
	}
	return nil
}
