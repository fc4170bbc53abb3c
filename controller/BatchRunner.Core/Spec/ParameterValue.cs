using System.Globalization;
using System.Text.Json;
using BatchRunner.Core.Json;

namespace BatchRunner.Core.Spec;

/// <summary>
/// A sweep parameter's value: a JSON scalar. Kept with its JSON text so that building
/// <c>BATCHRUNNER_PARAMS</c> for a 100,000-index sweep does no per-index formatting.
/// </summary>
public readonly record struct ParameterValue
{
    private ParameterValue(JsonValueKind kind, string json)
    {
        Kind = kind;
        Json = json;
    }

    public JsonValueKind Kind { get; }

    /// <summary>The value as JSON text (<c>0.5</c>, <c>"fifo"</c>, <c>true</c>).</summary>
    public string Json { get; }

    public static ParameterValue FromString(string value) => new(JsonValueKind.String, JsonStrings.Quote(value));

    public static ParameterValue FromBoolean(bool value) => new(value ? JsonValueKind.True : JsonValueKind.False, value ? "true" : "false");

    public static ParameterValue FromInteger(long value) => new(JsonValueKind.Number, value.ToString(CultureInfo.InvariantCulture));

    /// <summary>A real number; its JSON keeps a decimal point (<c>1.0</c>, not <c>1</c>) so the workload reads a float.</summary>
    /// <summary>
    /// A whole number is written as an integer (<c>1.0</c> as <c>1</c>), as kubectl and every JSON round trip
    /// already do on the way to the API server: the same document gives the same parameters through every door.
    /// </summary>
    public static ParameterValue FromDouble(double value) =>
        Math.Abs(value) < 9_007_199_254_740_992d && value == Math.Floor(value)
            ? FromInteger((long)value)
            : new(JsonValueKind.Number, JsonSerializer.Serialize(value, PlainJson.Default.Double));

    public override string ToString() => Json;
}
