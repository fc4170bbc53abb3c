using System.Threading.RateLimiting;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// Client-side QPS and burst for every API call, as client-go has and KubernetesClient does not: a controller
/// that wakes up to 500 new BatchJobs must not flood the API server. Watches are long-lived and not limited.
/// </summary>
public sealed class RateLimitingHandler : DelegatingHandler
{
    private readonly TokenBucketRateLimiter _limiter;

    public RateLimitingHandler(double qps, int burst)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(qps);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burst);
        // Refill ten times a second at high rates; below 10 QPS, one token every 1/qps seconds.
        var (period, tokens) = qps >= 10 ? (TimeSpan.FromMilliseconds(100), (int)Math.Round(qps / 10)) : (TimeSpan.FromSeconds(1 / qps), 1);
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
        if (request.RequestUri?.Query.Contains("watch=true", StringComparison.Ordinal) != true)
        {
            using var lease = await _limiter.AcquireAsync(1, cancellationToken).ConfigureAwait(false);
        }

        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _limiter.Dispose();
        }

        base.Dispose(disposing);
    }
}
