package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// manifest is one YAML document of a rendered template.
type manifest struct {
	Source  string // the template it came from
	Kind    string
	Content string
	weight  int
}

// installOrder is Helm's releaseutil.InstallOrder: the kinds a release creates first come first.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
	"ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
	"Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
}

var separator = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

type head struct {
	Kind     string `json:"kind"`
	Metadata *struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
}

// sortManifests splits every rendered file into documents, drops empty ones, parses each (a YAML error names
// its template, as Helm's does), and returns the ordinary ones in install order and the hooks by weight.
func sortManifests(files map[string]string) (manifests, hooks []manifest, err error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, doc := range separator.Split(files[name], -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var h head
			if err := yaml.Unmarshal([]byte(doc), &h); err != nil {
				return nil, nil, fmt.Errorf("YAML parse error on %s: %w", name, err)
			}
			m := manifest{Source: name, Kind: h.Kind, Content: strings.TrimSpace(doc)}
			if h.Metadata != nil && h.Metadata.Annotations["helm.sh/hook"] != "" {
				m.weight, _ = strconv.Atoi(h.Metadata.Annotations["helm.sh/hook-weight"])
				hooks = append(hooks, m)
				continue
			}
			manifests = append(manifests, m)
		}
	}
	byKind := func(list []manifest, byWeight bool) func(i, j int) bool {
		return func(i, j int) bool {
			if byWeight && list[i].weight != list[j].weight {
				return list[i].weight < list[j].weight
			}
			a, b := kindRank(list[i].Kind), kindRank(list[j].Kind)
			if a != b {
				return a < b
			}
			if a == len(installOrder) && list[i].Kind != list[j].Kind {
				return list[i].Kind < list[j].Kind
			}
			return list[i].Source < list[j].Source
		}
	}
	sort.SliceStable(manifests, byKind(manifests, false))
	sort.SliceStable(hooks, byKind(hooks, true))
	return manifests, hooks, nil
}

func kindRank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}
