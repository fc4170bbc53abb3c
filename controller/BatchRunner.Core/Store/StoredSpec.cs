using System.Globalization;
using System.Text.Json;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Store;

/// <summary>
/// Reads back a dispatched spec: the resolved model as <see cref="Runs.RunIdentity.SpecJson"/> writes it (the plan
/// ConfigMap's <c>spec.json</c>, a run's <c>_spec.json</c>), or a BatchJob document as a user writes it. Reading the
/// resolved form needs no defaults or validation, so the wrapper in a pod derives the same run id, parameters and
/// seeds as the controller that dispatched it.
/// </summary>
public static class StoredSpec
{
    /// <exception cref="InvalidSpecException">The text is neither form, naming what is wrong.</exception>
    public static BatchJob Parse(string text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException)
        {
            // Not JSON: a YAML document, as a user writes it.
            return BatchJobParser.Parse(text).GetJobOrThrow();
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("Spec", out _))
            {
                return BatchJobParser.Parse(text).GetJobOrThrow();
            }

            try
            {
                return Job(root);
            }
            catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new InvalidSpecException([new SpecError("", $"stored spec is not in the form BatchRunner writes: {e.Message}")]);
            }
        }
    }

    private static BatchJob Job(JsonElement root)
    {
        var meta = root.GetProperty("Metadata");
        var spec = root.GetProperty("Spec");
        var metadata = new ObjectMeta(
            meta.GetProperty("Name").GetString()!,
            meta.GetProperty("Namespace").GetString()!,
            Map(meta, "Labels"),
            Map(meta, "Annotations"));
        var resources = spec.GetProperty("Resources");
        var retry = spec.GetProperty("Retry");
        var results = spec.GetProperty("Results");
        return new BatchJob(metadata, new BatchJobSpec
        {
            Image = spec.GetProperty("Image").GetString(),
            Command = Strings(spec.GetProperty("Command")),
            Args = Strings(spec.GetProperty("Args")),
            Env = spec.GetProperty("Env").EnumerateArray().Select(e => new EnvVar(e.GetProperty("Name").GetString()!, e.GetProperty("Value").GetString()!)).ToList(),
            Resources = new ResourceRequests(
                resources.GetProperty("Cpu").GetString()!, resources.GetProperty("Memory").GetString()!,
                resources.GetProperty("MilliCpu").GetInt64(), resources.GetProperty("MemoryBytes").GetInt64()),
            Completions = spec.GetProperty("Completions").GetInt32(),
            Parallelism = spec.GetProperty("Parallelism").GetInt32(),
            Sweep = spec.GetProperty("Sweep") is { ValueKind: JsonValueKind.Object } sweep ? Sweep(sweep) : null,
            Retry = new RetryPolicy(retry.GetProperty("Attempts").GetInt32(), retry.GetProperty("BackoffSeconds").GetDouble(), retry.GetProperty("MaxBackoffSeconds").GetDouble()),
            TimeoutSeconds = NullableDouble(spec.GetProperty("TimeoutSeconds")),
            DeadlineSeconds = NullableDouble(spec.GetProperty("DeadlineSeconds")),
            Backend = spec.GetProperty("Backend").Deserialize(BatchRunner.Core.Json.CanonicalJson.Default.Backend),
            Results = new ResultsSpec(results.GetProperty("Uri").GetString(), Enum.Parse<ResultsFormat>(results.GetProperty("Format").GetString()!)),
        });
    }

    private static SweepSpec Sweep(JsonElement sweep) => new(
        sweep.GetProperty("Grid").EnumerateArray()
            .Select(axis => new GridAxis(axis.GetProperty("Name").GetString()!, axis.GetProperty("Values").EnumerateArray().Select(Value).ToList()))
            .ToList(),
        sweep.GetProperty("List").EnumerateArray()
            .Select(point => (IReadOnlyList<Parameter>)point.EnumerateArray().Select(p => new Parameter(p.GetProperty("Name").GetString()!, Value(p.GetProperty("Value")))).ToList())
            .ToList(),
        sweep.GetProperty("Repeats").GetInt32(),
        sweep.GetProperty("Seed").GetInt64());

    /// <summary>A parameter value from its kind and JSON text, through the factories that made it.</summary>
    private static ParameterValue Value(JsonElement element)
    {
        var json = element.GetProperty("Json").GetString()!;
        return element.GetProperty("Kind").GetString() switch
        {
            "String" => ParameterValue.FromString(JsonSerializer.Deserialize(json, BatchRunner.Core.Json.PlainJson.Default.String)!),
            "True" => ParameterValue.FromBoolean(true),
            "False" => ParameterValue.FromBoolean(false),
            "Number" when long.TryParse(json, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer) => ParameterValue.FromInteger(integer),
            "Number" => ParameterValue.FromDouble(double.Parse(json, NumberStyles.Float, CultureInfo.InvariantCulture)),
            var kind => throw new FormatException($"parameter value of kind {kind}"),
        };
    }

    private static List<string> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToList();

    private static double? NullableDouble(JsonElement element) => element.ValueKind == JsonValueKind.Null ? null : element.GetDouble();

    private static Dictionary<string, string> Map(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var map) && map.ValueKind == JsonValueKind.Object
            ? map.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal)
            : new Dictionary<string, string>(StringComparer.Ordinal);
}
