using System.Globalization;
using System.Text.Json;

namespace BatchRunner.Workloads;

/// <summary>
/// The BatchRunner process contract as a workload sees it: typed access to the
/// index's parameters (BATCHRUNNER_PARAMS), its seed (BATCHRUNNER_SEED) and the
/// results file in BATCHRUNNER_OUTPUT_DIR. Compiled into each workload, so it stays internal.
/// </summary>
internal sealed class WorkloadContext
{
    public const string ParametersVariable = "BATCHRUNNER_PARAMS";
    public const string SeedVariable = "BATCHRUNNER_SEED";
    public const string OutputDirectoryVariable = "BATCHRUNNER_OUTPUT_DIR";
    public const string ResultsFileName = "results.jsonl";
    public const int InvalidParametersExitCode = 2;

    private readonly string workloadName;
    private readonly Dictionary<string, JsonElement> parameters;
    private readonly HashSet<string> readParameterNames = [];
    private readonly TextWriter error;

    private WorkloadContext(string workloadName, Dictionary<string, JsonElement> parameters, int seed, string outputDirectory, TextWriter error)
    {
        this.workloadName = workloadName;
        this.parameters = parameters;
        this.error = error;
        Seed = seed;
        OutputDirectory = outputDirectory;
    }

    /// <summary>The index's seed; 0 when BATCHRUNNER_SEED is unset (a hand-run is still reproducible).</summary>
    public int Seed { get; }

    public string OutputDirectory { get; }

    /// <summary>The contract's variables as this process sees them.</summary>
    public static IReadOnlyDictionary<string, string?> ReadProcessEnvironment() =>
        new[] { ParametersVariable, SeedVariable, OutputDirectoryVariable }
            .ToDictionary(name => name, Environment.GetEnvironmentVariable);

    /// <summary>
    /// Parses the environment and runs <paramref name="workload"/>; a parameter problem
    /// becomes one line on <paramref name="error"/> and exit code 2.
    /// </summary>
    public static int Run(string workloadName, IReadOnlyDictionary<string, string?> environment, TextWriter error, Action<WorkloadContext> workload)
    {
        try
        {
            workload(FromEnvironment(workloadName, environment, error));
            return 0;
        }
        catch (WorkloadParameterException exception)
        {
            error.WriteLine($"{workloadName}: {exception.Message}");
            return InvalidParametersExitCode;
        }
    }

    /// <summary>A parameter that must be a finite number greater than zero.</summary>
    public double GetPositiveDouble(string name)
    {
        var element = GetRequired(name);
        double value = double.NaN;
        var parsed = element.ValueKind switch
        {
            JsonValueKind.Number => element.TryGetDouble(out value),
            JsonValueKind.String => double.TryParse(element.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out value),
            _ => false,
        };
        if (!parsed || !double.IsFinite(value))
        {
            throw Invalid(name, $"must be a number, got {element.GetRawText()}");
        }
        return value > 0 ? value : throw Invalid(name, $"must be greater than 0, got {element.GetRawText()}");
    }

    /// <summary>An integer parameter in [minimum, maximum]; integral floats such as 2e5 are accepted.</summary>
    public long GetInteger(string name, long minimum, long maximum, long? defaultValue = null)
    {
        if (defaultValue is { } fallback && !parameters.ContainsKey(name))
        {
            readParameterNames.Add(name);
            return fallback;
        }
        var element = GetRequired(name);
        var text = element.ValueKind switch
        {
            JsonValueKind.Number => element.GetRawText(),
            JsonValueKind.String => element.GetString(),
            _ => null,
        };
        if (!TryParseInteger(text, out var value))
        {
            throw Invalid(name, $"must be an integer, got {element.GetRawText()}");
        }
        return value >= minimum && value <= maximum
            ? value
            : throw Invalid(name, $"must be between {minimum} and {maximum}, got {value}");
    }

    /// <summary>Warns on stderr about parameters this workload never read, which usually means a typo.</summary>
    public void WarnAboutUnreadParameters()
    {
        foreach (var name in parameters.Keys.Where(name => !readParameterNames.Contains(name)).Order(StringComparer.Ordinal))
        {
            error.WriteLine($"{workloadName}: warning: ignoring unknown parameter '{name}'");
        }
    }

    /// <summary>Writes the single result row as one JSON line to results.jsonl in the output directory.</summary>
    public void WriteResultRow(Action<Utf8JsonWriter> writeColumns)
    {
        Directory.CreateDirectory(OutputDirectory);
        // Overwrite rather than append: a retried index must not leave duplicate rows.
        using var stream = File.Create(Path.Combine(OutputDirectory, ResultsFileName));
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writeColumns(writer);
            writer.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
    }

    private static WorkloadParameterException Invalid(string name, string problem) =>
        new($"parameter '{name}' {problem}");

    private static WorkloadContext FromEnvironment(string workloadName, IReadOnlyDictionary<string, string?> environment, TextWriter error)
    {
        var seedText = environment.GetValueOrDefault(SeedVariable);
        var seed = 0;
        if (!string.IsNullOrWhiteSpace(seedText)
            && (!int.TryParse(seedText, NumberStyles.Integer, CultureInfo.InvariantCulture, out seed) || seed < 0))
        {
            throw new WorkloadParameterException($"{SeedVariable} must be an integer in [0, 2147483647], got '{seedText}'");
        }

        var outputDirectory = environment.GetValueOrDefault(OutputDirectoryVariable);
        if (string.IsNullOrEmpty(outputDirectory))
        {
            outputDirectory = Directory.GetCurrentDirectory();
        }

        return new WorkloadContext(workloadName, ParseParameters(environment.GetValueOrDefault(ParametersVariable)), seed, outputDirectory, error);
    }

    private static Dictionary<string, JsonElement> ParseParameters(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return [];
        }
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new WorkloadParameterException($"{ParametersVariable} must be a JSON object, got {document.RootElement.ValueKind}");
            }
            var parameters = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!parameters.TryAdd(property.Name, property.Value.Clone()))
                {
                    throw new WorkloadParameterException($"{ParametersVariable} names parameter '{property.Name}' twice");
                }
            }
            return parameters;
        }
        catch (JsonException exception)
        {
            throw new WorkloadParameterException($"{ParametersVariable} is not valid JSON: {exception.Message}");
        }
    }

    private JsonElement GetRequired(string name)
    {
        readParameterNames.Add(name);
        return parameters.TryGetValue(name, out var element)
            ? element
            : throw Invalid(name, $"is missing from {ParametersVariable}");
    }

    private static bool TryParseInteger(string? text, out long value)
    {
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out value))
        {
            return true;
        }
        // Sweeps generated by numeric tools often write 2e5 or 200000.0 for an integer.
        var isIntegral = double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
            && double.IsFinite(number) && Math.Floor(number) == number && Math.Abs(number) < 9e15;
        value = isIntegral ? (long)number : 0;
        return isIntegral;
    }
}

/// <summary>A missing or invalid parameter: reported on stderr, exit code 2.</summary>
internal sealed class WorkloadParameterException(string message) : Exception(message);
