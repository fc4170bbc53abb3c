using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace BatchRunner.Manifests.Tests;

/// <summary>
/// What the API server does with an object under a structural CRD schema, for the parts the BatchJob CRD uses:
/// type, int-or-string, enum, bounds, lengths, pattern, required, min/max items and properties, list-type map
/// keys, and pruning (a field the schema does not name, where unknown fields are not preserved, is reported, as
/// kubectl's strict field validation reports it). Not a general OpenAPI validator.
/// </summary>
internal static class CrdSchema
{
    public static IReadOnlyList<string> Validate(JsonNode? value, JsonObject schema)
    {
        var errors = new List<string>();
        Check(value, schema, "", errors);
        return errors;
    }

    /// <summary>Visits every schema node below <paramref name="schema"/> with its field path (x.y, x[], x.*).</summary>
    public static IEnumerable<(string Path, JsonObject Schema)> Walk(JsonObject schema, string path = "")
    {
        yield return (path, schema);
        if (schema["properties"] is JsonObject properties)
        {
            foreach (var (name, child) in properties)
            {
                foreach (var inner in Walk(child!.AsObject(), Join(path, name)))
                {
                    yield return inner;
                }
            }
        }

        if (schema["additionalProperties"] is JsonObject additional)
        {
            foreach (var inner in Walk(additional, Join(path, "*")))
            {
                yield return inner;
            }
        }

        if (schema["items"] is JsonObject items)
        {
            foreach (var inner in Walk(items, path + "[]"))
            {
                yield return inner;
            }
        }
    }

    public static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    public static bool Flag(JsonObject schema, string name) => schema[name] is JsonValue v && v.TryGetValue<bool>(out var b) && b;

    private static void Check(JsonNode? value, JsonObject schema, string path, List<string> errors)
    {
        var where = path.Length == 0 ? "<root>" : path;
        if (value is null)
        {
            if (!Flag(schema, "nullable"))
            {
                errors.Add($"{where}: null is not allowed");
            }

            return;
        }

        var type = Manifests.Str(schema["type"]);
        if (Flag(schema, "x-kubernetes-int-or-string"))
        {
            if (!IsInteger(value) && !IsString(value))
            {
                errors.Add($"{where}: must be an integer or a string, got {value.ToJsonString()}");
                return;
            }
        }
        else if (type is null)
        {
            Assert.True(Flag(schema, "x-kubernetes-preserve-unknown-fields"), $"{where}: schema without a type");
        }
        else if (!HasType(value, type))
        {
            errors.Add($"{where}: must be of type {type}, got {value.ToJsonString()}");
            return;
        }

        switch (value)
        {
            case JsonObject obj:
                CheckObject(obj, schema, path, where, errors);
                break;
            case JsonArray array:
                CheckArray(array, schema, path, where, errors);
                break;
            case JsonValue scalar:
                CheckScalar(scalar, schema, where, errors);
                break;
        }
    }

    private static void CheckObject(JsonObject obj, JsonObject schema, string path, string where, List<string> errors)
    {
        var properties = schema["properties"] as JsonObject;
        var additional = schema["additionalProperties"] as JsonObject;
        var preserve = Flag(schema, "x-kubernetes-preserve-unknown-fields");
        foreach (var (key, child) in obj)
        {
            var childPath = Join(path, key);
            if (properties?[key] is JsonObject childSchema)
            {
                Check(child, childSchema, childPath, errors);
            }
            else if (additional is not null)
            {
                Check(child, additional, childPath, errors);
            }
            else if (!preserve && path != "metadata") // the API server validates metadata itself
            {
                errors.Add($"{childPath}: unknown field (pruned)");
            }
        }

        foreach (var required in Manifests.Strings(schema["required"]))
        {
            if (!obj.ContainsKey(required))
            {
                errors.Add($"{Join(path, required)}: required");
            }
        }

        if (schema["minProperties"] is { } min && obj.Count < min.GetValue<double>())
        {
            errors.Add($"{where}: must have at least {min} properties");
        }

        if (schema["maxProperties"] is { } max && obj.Count > max.GetValue<double>())
        {
            errors.Add($"{where}: must have at most {max} properties");
        }
    }

    private static void CheckArray(JsonArray array, JsonObject schema, string path, string where, List<string> errors)
    {
        if (schema["minItems"] is { } min && array.Count < min.GetValue<double>())
        {
            errors.Add($"{where}: must have at least {min} items");
        }

        if (schema["maxItems"] is { } max && array.Count > max.GetValue<double>())
        {
            errors.Add($"{where}: must have at most {max} items");
        }

        var items = schema["items"]!.AsObject();
        for (var i = 0; i < array.Count; i++)
        {
            Check(array[i], items, $"{path}[{i}]", errors);
        }

        if (Manifests.Str(schema["x-kubernetes-list-type"]) == "map")
        {
            var keys = Manifests.Strings(schema["x-kubernetes-list-map-keys"]).ToList();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in array.OfType<JsonObject>())
            {
                var key = string.Join("\u0001", keys.Select(k => item[k]?.ToJsonString() ?? "null"));
                if (!seen.Add(key))
                {
                    errors.Add($"{where}: duplicate entry {key}");
                }
            }
        }
    }

    private static void CheckScalar(JsonValue scalar, JsonObject schema, string where, List<string> errors)
    {
        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => JsonNode.DeepEquals(a, scalar)))
        {
            errors.Add($"{where}: must be one of {allowed.ToJsonString()}, got {scalar.ToJsonString()}");
        }

        if (scalar.GetValueKind() == JsonValueKind.Number)
        {
            var number = scalar.GetValue<double>();
            var exclusive = Flag(schema, "exclusiveMinimum");
            if (schema["minimum"] is { } min && (exclusive ? number <= min.GetValue<double>() : number < min.GetValue<double>()))
            {
                errors.Add($"{where}: must be {(exclusive ? ">" : ">=")} {min}, got {number}");
            }

            if (schema["maximum"] is { } max && number > max.GetValue<double>())
            {
                errors.Add($"{where}: must be <= {max}, got {number}");
            }
        }

        if (scalar.GetValueKind() == JsonValueKind.String)
        {
            var text = scalar.GetValue<string>();
            if (schema["minLength"] is { } min && text.Length < min.GetValue<double>())
            {
                errors.Add($"{where}: must be at least {min} characters");
            }

            if (Manifests.Str(schema["pattern"]) is { } pattern && !Regex.IsMatch(text, pattern, RegexOptions.CultureInvariant))
            {
                errors.Add($"{where}: must match {pattern}, got \"{text}\"");
            }
        }
    }

    private static bool HasType(JsonNode value, string type) => type switch
    {
        "object" => value is JsonObject,
        "array" => value is JsonArray,
        "string" => IsString(value),
        "integer" => IsInteger(value),
        "number" => value is JsonValue v && v.GetValueKind() == JsonValueKind.Number,
        "boolean" => value is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False,
        _ => throw new InvalidOperationException($"unknown schema type {type}"),
    };

    private static bool IsString(JsonNode value) => value is JsonValue v && v.GetValueKind() == JsonValueKind.String;

    // kubectl turns YAML into JSON and the API server reads an integral number (2, or 2.0 written in YAML) as an integer.
    private static bool IsInteger(JsonNode value) =>
        value is JsonValue v && v.GetValueKind() == JsonValueKind.Number &&
        (v.TryGetValue<long>(out _) || (v.TryGetValue<double>(out var d) && Math.Abs(d) < 9.2e18 && d == Math.Floor(d)));

    public static string Describe(IEnumerable<string> errors) => string.Join("\n", errors.DefaultIfEmpty("(no errors)"));
}
