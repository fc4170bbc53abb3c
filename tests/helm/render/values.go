package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// readValues reads a values file as Helm's chartutil.ReadValues does: YAML through JSON, so numbers are float64.
func readValues(data []byte) (map[string]interface{}, error) {
	var values map[string]interface{}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, err
	}
	if values == nil {
		values = map[string]interface{}{}
	}
	return values, nil
}

// userValues merges the -f files in order, then --set, then --set-string, as Helm's values.Options.MergeValues.
func userValues(files, sets, setStrings []string) (map[string]interface{}, error) {
	base := map[string]interface{}{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		current, err := readValues(raw)
		if err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", file, err)
		}
		base = mergeMaps(base, current)
	}
	for _, set := range sets {
		if err := parseSet(set, base, false); err != nil {
			return nil, fmt.Errorf("failed parsing --set data: %w", err)
		}
	}
	for _, set := range setStrings {
		if err := parseSet(set, base, true); err != nil {
			return nil, fmt.Errorf("failed parsing --set-string data: %w", err)
		}
	}
	return base, nil
}

// mergeMaps is Helm's: b's keys win; maps present on both sides merge key by key.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(bv, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// coalesce lays the user's values over the chart's defaults as Helm's CoalesceValues does: the user's value
// wins, maps merge key by key, and a user's null removes the default.
func coalesce(defaults, user map[string]interface{}) map[string]interface{} {
	out := deepCopyMap(user)
	coalesceTables(out, defaults)
	return out
}

func coalesceTables(dst, src map[string]interface{}) {
	for key, srcValue := range src {
		dstValue, present := dst[key]
		switch {
		case !present:
			if m, ok := srcValue.(map[string]interface{}); ok {
				dst[key] = deepCopyMap(m)
			} else {
				dst[key] = srcValue
			}
		case dstValue == nil:
			delete(dst, key)
		default:
			dm, dIsMap := dstValue.(map[string]interface{})
			sm, sIsMap := srcValue.(map[string]interface{})
			if dIsMap && sIsMap {
				coalesceTables(dm, sm)
			}
		}
	}
	// Nulls the user wrote for keys the chart does not have are dropped too.
	for key, value := range dst {
		if value == nil {
			delete(dst, key)
		}
	}
}

func deepCopyMap(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		if inner, ok := v.(map[string]interface{}); ok {
			out[k] = deepCopyMap(inner)
		} else {
			out[k] = v
		}
	}
	return out
}

// parseSet applies one --set argument (a.b=v,c={x,y}) to values, typing values as Helm's strvals does:
// true/false, null, integers (int64), else strings; with asString every value is a string.
func parseSet(arg string, values map[string]interface{}, asString bool) error {
	for _, assignment := range splitTopLevel(arg) {
		eq := indexUnescaped(assignment, '=')
		if eq < 0 {
			return fmt.Errorf("key %q has no value", assignment)
		}
		keyPart, raw := assignment[:eq], assignment[eq+1:]
		keys := splitKey(keyPart)
		for _, k := range keys {
			if k == "" {
				return fmt.Errorf("key %q has an empty part", keyPart)
			}
			if strings.ContainsAny(k, "[]") {
				return fmt.Errorf("key %q: list indexes are not supported by this renderer", keyPart)
			}
		}
		var value interface{}
		if strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			list := []interface{}{}
			if inner := raw[1 : len(raw)-1]; inner != "" {
				for _, item := range strings.Split(inner, ",") {
					list = append(list, typed(unescape(item), asString))
				}
			}
			value = list
		} else {
			value = typed(unescape(raw), asString)
		}
		target := values
		for _, k := range keys[:len(keys)-1] {
			next, ok := target[k].(map[string]interface{})
			if !ok {
				next = map[string]interface{}{}
				target[k] = next
			}
			target = next
		}
		target[keys[len(keys)-1]] = value
	}
	return nil
}

func typed(value string, asString bool) interface{} {
	if asString {
		return value
	}
	switch {
	case strings.EqualFold(value, "true"):
		return true
	case strings.EqualFold(value, "false"):
		return false
	case strings.EqualFold(value, "null"):
		return nil
	case value == "0":
		return int64(0)
	}
	// Like strvals: a leading zero keeps it a string (an id, a zip code).
	if len(value) > 0 && value[0] != '0' {
		if i, err := strconv.ParseInt(value, 10, 64); err == nil {
			return i
		}
	}
	return value
}

// splitTopLevel splits on commas that are neither escaped nor inside {...}.
func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func splitKey(key string) []string {
	var parts []string
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		if key[i] == '\\' && i+1 < len(key) {
			i++
			b.WriteByte(key[i])
			continue
		}
		if key[i] == '.' {
			parts = append(parts, b.String())
			b.Reset()
			continue
		}
		b.WriteByte(key[i])
	}
	return append(parts, b.String())
}

func indexUnescaped(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == c {
			return i
		}
	}
	return -1
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
