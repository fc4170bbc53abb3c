using System.Net;
using k8s.Autorest;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// The library client's own HTTP pipeline (credentials, rate limit, waits on 429, call counts) for the few calls whose
/// bodies BatchRunner writes or reads itself: Job creates whose answer nobody reads, and watches decoded in one pass.
/// A failure throws what the generated calls throw, an <see cref="HttpOperationException"/> carrying the server's answer.
/// </summary>
internal static class ClientPipeline
{
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

    /// <summary>The library's base address with a path relative to it (its base always ends in a slash).</summary>
    public static Uri Address(k8s.Kubernetes client, string relativePath) => new(client.BaseUri, relativePath);
}
