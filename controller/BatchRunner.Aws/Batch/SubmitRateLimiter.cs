using System.Threading.RateLimiting;

namespace BatchRunner.Aws.Batch;

/// <summary>
/// The client-side token bucket for SubmitJob: AWS's limit (50 per second) is per account and region, so one
/// bucket is shared by every run a process dispatches. Tokens come back a tenth of a second's worth at a time and
/// at most a fifth of a second's worth is held, so bursts stay small and no second sees much more than the rate.
/// Throttling answers are still retried with backoff by the client underneath.
/// </summary>
public sealed class SubmitRateLimiter : IDisposable
{
    private readonly TokenBucketRateLimiter _bucket;

    public SubmitRateLimiter(double perSecond)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(perSecond, 0);
        PerSecond = perSecond;
        var perTick = Math.Max(1, (int)Math.Round(perSecond / 10));
        _bucket = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = Math.Max(perTick, (int)Math.Floor(perSecond / 5)),
            TokensPerPeriod = perTick,
            ReplenishmentPeriod = TimeSpan.FromSeconds(perTick / perSecond),
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
    }

    public double PerSecond { get; }

    /// <summary>Waits for a token.</summary>
    public async Task AcquireAsync(CancellationToken cancellation)
    {
        using var lease = await _bucket.AcquireAsync(1, cancellation).ConfigureAwait(false);
        if (!lease.IsAcquired)
        {
            throw new InvalidOperationException("the SubmitJob rate limiter refused a lease");
        }
    }

    public void Dispose() => _bucket.Dispose();
}
