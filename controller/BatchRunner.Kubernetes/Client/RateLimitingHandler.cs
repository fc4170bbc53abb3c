using System.Threading.RateLimiting;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// Client-side QPS and burst for every API call, as client-go has and KubernetesClient does not: a controller
/// that wakes up to 500 new BatchJobs must not flood the API server. Watches are long-lived and not limited; Events
/// come last (client-go's recorder, too, writes them apart from the work).
/// <para>
/// <see cref="Auto"/> is the default: limited until the API server's first answer shows API Priority and Fairness
/// (the <c>X-Kubernetes-PF-FlowSchema-UID</c> header, on by default since Kubernetes 1.20), then not at all, since the
/// server itself then shares its capacity among clients and answers 429 to hold one back; this is what SIG API
/// Machinery recommends and controller-runtime does by default since v0.21. A rate set by hand always holds.
/// </para>
/// </summary>
public sealed class RateLimitingHandler : DelegatingHandler
{
    /// <summary>The header API Priority and Fairness puts on every answer.</summary>
    public const string FlowSchemaHeader = "X-Kubernetes-PF-FlowSchema-UID";

    private readonly TokenBucketRateLimiter _limiter;
    private readonly TimeSpan _period;
    private readonly bool _liftWithPriorityAndFairness;
    private readonly Action? _lifted;
    private volatile int _unlimited;

    /// <summary>Limited at <paramref name="qps"/> until the API server shows API Priority and Fairness; then unlimited (and <paramref name="lifted"/> is told once).</summary>
    public static RateLimitingHandler Auto(double qps, int burst, Action? lifted = null) => new(qps, burst, liftWithPriorityAndFairness: true, lifted);

    public RateLimitingHandler(double qps, int burst)
        : this(qps, burst, liftWithPriorityAndFairness: false, lifted: null)
    {
    }

    private RateLimitingHandler(double qps, int burst, bool liftWithPriorityAndFairness, Action? lifted)
    {
        _liftWithPriorityAndFairness = liftWithPriorityAndFairness;
        _lifted = lifted;
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
        if (_unlimited == 1 || uri?.Query.Contains("watch=true", StringComparison.Ordinal) == true)
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

        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (_liftWithPriorityAndFairness && _unlimited == 0 && response.Headers.Contains(FlowSchemaHeader)
            && Interlocked.Exchange(ref _unlimited, 1) == 0)
        {
            _lifted?.Invoke();
        }

        return response;
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
