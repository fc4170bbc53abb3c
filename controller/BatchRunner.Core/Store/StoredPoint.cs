using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRunner.Core.Store;

/// <summary>
/// The latest succeeded attempt of a point in a store (<see cref="StoreLayout.PointKey"/>): where it is, the digest of
/// its outputs, and the hashes of its key's fields (<c>field=hash</c> per line, for <c>explain</c>).
/// </summary>
public sealed record StoredPoint(
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("fields")] string? Fields = null)
{
    public byte[] ToJsonUtf8() => JsonSerializer.SerializeToUtf8Bytes(this, Json.PlainJson.Default.StoredPoint);

    /// <summary>The pointer, or null when the bytes are not one (a damaged or foreign object is never trusted).</summary>
    public static StoredPoint? FromJson(ReadOnlySpan<byte> utf8)
    {
        try
        {
            return JsonSerializer.Deserialize(utf8, Json.PlainJson.Default.StoredPoint) is { Source.Length: > 0, Digest.Length: > 0 } point ? point : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
