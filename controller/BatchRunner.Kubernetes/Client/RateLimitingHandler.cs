using System.Threading.RateLimiting;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// Client-side QPS and burst for every API call, as client-go has and KubernetesClient does not: a controller
/// that wakes up to 500 new BatchJobs must not flood the API server. Watches are long-lived and not limited; Events
/// come last (client-go's recorder, too, writes them apart from the work).
/// </summary>
public sealed class RateLimitingHandler : DelegatingHandler
{
    private readonly TokenBucketRateLimiter _limiter;
    private readonly TimeSpan _period;

    public RateLimitingHandler(double qps, int burst)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(qps);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burst);
        // Refill ten times a second at high rates; below 10 QPS, one token every 1/qps seconds.
        var (period, tokens) = qps >= 10 ? (TimeSpan.FromMilliseconds(100), (int)Math.Round(qps / 10)) : (TimeSpan.FromSeconds(1 / qps), 1);
        _period = period;
        _limiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = tokens,
            ReplenishmentPeriod = period,
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var uri = request.RequestUri;
        if (uri?.Query.Contains("watch=true", StringComparison.Ordinal) == true)
        {
            // Not limited.
        }
        else if (IsEvent(uri))
        {
            // Events take a token only when no other call waits for one: in a burst, the Jobs go first.
            while (true)
            {
                using var lease = _limiter.AttemptAcquire(1);
                if (lease.IsAcquired)
                {
                    break;
                }

                await Task.Delay(_period, cancellationToken).ConfigureAwait(false);
            }
        }
        else
        {
            using var lease = await _limiter.AcquireAsync(1, cancellationToken).ConfigureAwait(false);
        }

        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private static bool IsEvent(Uri? uri) =>
        uri is not null && (uri.AbsolutePath.EndsWith("/events", StringComparison.Ordinal) || uri.AbsolutePath.Contains("/events/", StringComparison.Ordinal));

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _limiter.Dispose();
        }

        base.Dispose(disposing);
    }
}
