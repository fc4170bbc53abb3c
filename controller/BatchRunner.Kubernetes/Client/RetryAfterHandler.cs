using System.Net;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// Sends a call again when the API server says when to (429 Too Many Requests, or a 5xx with <c>Retry-After</c>), as
/// client-go does and KubernetesClient does not: API Priority and Fairness answers 429 to hold a client back, and a
/// reconcile should not fail (and back off for minutes) for what the server meant as "in a second". At most
/// <see cref="MostRetries"/> times, each wait at most <see cref="MostWait"/>; then the answer goes to the caller.
/// </summary>
public sealed class RetryAfterHandler(TimeProvider time) : DelegatingHandler
{
    public const int MostRetries = 10;

    public static readonly TimeSpan MostWait = TimeSpan.FromSeconds(10);

    public RetryAfterHandler()
        : this(TimeProvider.System)
    {
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        // The body is read once so each try sends the same bytes (the client's content is a string, cheap to keep).
        if (request.Content is { } content)
        {
            await content.LoadIntoBufferAsync(cancellationToken).ConfigureAwait(false);
        }

        for (var attempt = 0; ; attempt++)
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (attempt >= MostRetries || WaitOf(response) is not { } wait)
            {
                return response;
            }

            response.Dispose();
            await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>How long the server asked the client to wait, when it asked; null for an answer to keep.</summary>
    public static TimeSpan? WaitOf(HttpResponseMessage response)
    {
        var status = (int)response.StatusCode;
        if (status != (int)HttpStatusCode.TooManyRequests && status < 500)
        {
            return null;
        }

        var asked = response.Headers.RetryAfter is { } retryAfter
            ? retryAfter.Delta ?? (retryAfter.Date is { } date ? date - DateTimeOffset.UtcNow : null)
            : null;
        if (asked is null)
        {
            // A 429 without a time still means "later"; a 5xx without one is the caller's to handle.
            return status == (int)HttpStatusCode.TooManyRequests ? TimeSpan.FromSeconds(1) : null;
        }

        return asked < TimeSpan.Zero ? TimeSpan.Zero : asked > MostWait ? MostWait : asked;
    }
}
