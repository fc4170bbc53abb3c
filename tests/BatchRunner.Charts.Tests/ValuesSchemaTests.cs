using System.Text.Json.Nodes;

namespace BatchRunner.Charts.Tests;

/// <summary>values.yaml and values.schema.json describe the same settings.</summary>
public class ValuesSchemaTests
{
    private static readonly JsonObject Schema = JsonNode.Parse(File.ReadAllText(Path.Combine(Helm.ChartPath, "values.schema.json")))!.AsObject();
    private static readonly JsonObject Values = Assert.Single(ManifestFiles.Load(File.ReadAllText(Path.Combine(Helm.ChartPath, "values.yaml"))));

    [Fact]
    public void Every_setting_the_schema_knows_has_a_default_in_values_yaml_and_the_reverse()
    {
        var inSchema = SchemaPaths(Schema, "").Where(p => p != "global").ToHashSet(StringComparer.Ordinal);
        var inValues = ValuePaths(Values, "", Schema).ToHashSet(StringComparer.Ordinal);

        Assert.Empty(inSchema.Except(inValues).Order(StringComparer.Ordinal));
        Assert.Empty(inValues.Except(inSchema).Order(StringComparer.Ordinal));
        Assert.Contains("sqs.tenants.maxMemory", inSchema);
    }

    [Fact]
    public void The_schema_is_closed_so_a_misspelled_setting_is_an_error()
    {
        foreach (var (path, node) in Objects(Schema, ""))
        {
            Assert.True(node["additionalProperties"] is JsonValue v && !v.GetValue<bool>(), $"{(path.Length == 0 ? "<root>" : path)}: additionalProperties is not false");
        }
    }

    private static IEnumerable<(string Path, JsonObject Node)> Objects(JsonObject schema, string path)
    {
        if (schema["properties"] is not JsonObject properties)
        {
            yield break;
        }

        yield return (path, schema);
        foreach (var (name, child) in properties)
        {
            foreach (var inner in Objects(child!.AsObject(), path.Length == 0 ? name : $"{path}.{name}"))
            {
                yield return inner;
            }
        }
    }

    /// <summary>The leaves of the schema: settings, and free-form maps or lists taken whole.</summary>
    private static IEnumerable<string> SchemaPaths(JsonObject schema, string path) =>
        schema["properties"] is JsonObject properties
            ? properties.SelectMany(p => SchemaPaths(p.Value!.AsObject(), path.Length == 0 ? p.Key : $"{path}.{p.Key}"))
            : [path];

    private static IEnumerable<string> ValuePaths(JsonNode? value, string path, JsonObject? schema) =>
        value is JsonObject obj && schema?["properties"] is JsonObject properties
            ? obj.SelectMany(kv => ValuePaths(kv.Value, path.Length == 0 ? kv.Key : $"{path}.{kv.Key}", properties[kv.Key] as JsonObject))
            : [path];
}
