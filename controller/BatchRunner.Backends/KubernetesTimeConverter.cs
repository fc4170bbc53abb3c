using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRunner.Backends;

/// <summary>
/// Times as Kubernetes writes them (<c>2026-11-22T13:57:57Z</c>): RFC 3339, UTC, whole seconds. The BatchJob's status
/// and every backend's state kept in it use them.
/// </summary>
public sealed class KubernetesTimeConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DateTimeOffset.Parse(reader.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
}
