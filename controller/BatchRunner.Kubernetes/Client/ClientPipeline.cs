using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using k8s.Autorest;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// The library client's own HTTP pipeline (credentials, rate limit, waits on 429, call counts) for the few calls whose
/// bodies BatchRunner writes or reads itself: Job creates whose answer nobody reads, and watches decoded in one pass.
/// A failure throws what the generated calls throw, an <see cref="HttpOperationException"/> carrying the server's answer.
/// </summary>
internal static class ClientPipeline
{
    /// <summary>
    /// The answer a write asks for when only its metadata is read: the API server then encodes the object's metadata
    /// alone (as client-go's metadata client asks, since Kubernetes 1.15), not a whole Job or BatchJob that is
    /// thrown away. A server that cannot answer so answers the whole object, the second choice; its metadata reads
    /// the same.
    /// </summary>
    public static readonly MediaTypeWithQualityHeaderValue[] MetadataOnly =
    [
        MediaTypeWithQualityHeaderValue.Parse("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
        MediaTypeWithQualityHeaderValue.Parse("application/json;q=0.9"),
    ];

    /// <summary>Sends <paramref name="request"/>; the caller disposes the answer. <paramref name="requestBody"/> is only quoted in a failure.</summary>
    public static async Task<HttpResponseMessage> SendAsync(
        k8s.Kubernetes client, HttpRequestMessage request, string? requestBody, HttpCompletionOption completion, CancellationToken cancellation)
    {
        request.Version = HttpVersion.Version20;
        if (client.Credentials is { } credentials)
        {
            await credentials.ProcessHttpRequestAsync(request, cancellation).ConfigureAwait(false);
        }

        var response = await client.HttpClient.SendAsync(request, completion, cancellation).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var content = await response.Content.ReadAsStringAsync(cancellation).ConfigureAwait(false);
            throw new HttpOperationException($"Operation returned an invalid status code '{response.StatusCode}'")
            {
                Request = new HttpRequestMessageWrapper(request, requestBody),
                Response = new HttpResponseMessageWrapper(response, content),
            };
        }
    }

    /// <summary>Asks for the answer's metadata alone (<see cref="MetadataOnly"/>).</summary>
    public static void AcceptMetadataOnly(HttpRequestMessage request)
    {
        foreach (var type in MetadataOnly)
        {
            request.Headers.Accept.Add(type);
        }
    }

    /// <summary><c>metadata.resourceVersion</c> of an answer (metadata alone, or a whole object), or null when it has none.</summary>
    public static string? ResourceVersionOf(ReadOnlySpan<byte> answer)
    {
        var reader = new Utf8JsonReader(answer);
        return reader.Read() && reader.TokenType == JsonTokenType.StartObject
            && JsonProperty.MoveTo(ref reader, "metadata"u8) && reader.TokenType == JsonTokenType.StartObject
            && JsonProperty.MoveTo(ref reader, "resourceVersion"u8) && reader.TokenType == JsonTokenType.String
            ? reader.GetString()
            : null;
    }

    /// <summary>The library's base address with a path relative to it (its base always ends in a slash).</summary>
    public static Uri Address(k8s.Kubernetes client, string relativePath) => new(client.BaseUri, relativePath);
}
