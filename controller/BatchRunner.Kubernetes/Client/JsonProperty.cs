using System.Text.Json;

namespace BatchRunner.Kubernetes.Client;

/// <summary>Reading one property of a JSON object off the API server's bytes without decoding the rest.</summary>
internal static class JsonProperty
{
    /// <summary>
    /// Moves a reader that is just inside an object to the value of its property <paramref name="name"/> (the others
    /// skipped whole); false when the object has none.
    /// </summary>
    public static bool MoveTo(ref Utf8JsonReader reader, ReadOnlySpan<byte> name)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var found = reader.ValueTextEquals(name);
            reader.Read();
            if (found)
            {
                return true;
            }

            reader.Skip();
        }

        return false;
    }
}
