using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using BatchRunner.Core.Json;

namespace BatchRunner.Core.Spec;

/// <summary>
/// A sweep parameter's value: a JSON scalar. Kept with its JSON text so that building
/// <c>BATCHRUNNER_PARAMS</c> for a 100,000-index sweep does no per-index formatting.
/// </summary>
[JsonConverter(typeof(ParameterValueJsonConverter))]
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

/// <summary>
/// A parameter value as the resolved spec stores it, <c>{"Kind":"Number","Json":"0.5"}</c> (the run id hashes this
/// form, so it never changes), read back through the factories that made it: the same value, whatever wrote it.
/// </summary>
public sealed class ParameterValueJsonConverter : JsonConverter<ParameterValue>
{
    public override ParameterValue Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("a parameter value is an object with Kind and Json");
        }

        string? kind = null, json = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString();
            reader.Read();
            switch (name)
            {
                case "Kind":
                    kind = reader.GetString();
                    break;
                case "Json":
                    json = reader.GetString();
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        if (json is null)
        {
            throw new JsonException("a parameter value without its Json");
        }

        return kind switch
        {
            "String" => ParameterValue.FromString(JsonSerializer.Deserialize(json, PlainJson.Default.String) ?? throw new JsonException("a String parameter value that is not a JSON string")),
            "True" => ParameterValue.FromBoolean(true),
            "False" => ParameterValue.FromBoolean(false),
            "Number" when long.TryParse(json, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer) => ParameterValue.FromInteger(integer),
            "Number" when double.TryParse(json, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) && double.IsFinite(real) => ParameterValue.FromDouble(real),
            _ => throw new JsonException($"a parameter value of kind {kind ?? "(none)"} with Json {json}"),
        };
    }

    public override void Write(Utf8JsonWriter writer, ParameterValue value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        writer.WriteString("Kind", value.Kind.ToString());
        writer.WriteString("Json", value.Json);
        writer.WriteEndObject();
    }
}
