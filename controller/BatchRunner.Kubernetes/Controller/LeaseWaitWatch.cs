namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// Notices a replica waiting to lead far longer than a lease lasts for a Lease that nobody renews: that is never
/// normal (an unrenewed Lease expires after one lease duration and is taken), so something keeps this replica from
/// taking it (RBAC, an API server refusing the update) and an operator should hear of it. Waiting behind a leader
/// that renews is normal and says nothing.
/// </summary>
public sealed class LeaseWaitWatch(TimeSpan leaseDuration, DateTimeOffset waitingSince)
{
    /// <summary>How long past the last change of the Lease before a warning: several lease durations.</summary>
    public TimeSpan WarnAfter { get; } = leaseDuration * 4;

    private DateTimeOffset _lastWarning = DateTimeOffset.MinValue;

    /// <summary>
    /// A warning to log now, or null. <paramref name="lastChangedAt"/> is when the Lease was last seen to change (null:
    /// never read). Repeats once per <see cref="WarnAfter"/> while it lasts.
    /// </summary>
    public string? Check(DateTimeOffset now, DateTimeOffset? lastChangedAt, string? holder, string? lastError)
    {
        var quietSince = lastChangedAt is { } changed && changed > waitingSince ? changed : waitingSince;
        if (now - quietSince < WarnAfter || now - _lastWarning < WarnAfter)
        {
            return null;
        }

        _lastWarning = now;
        var waited = (int)(now - waitingSince).TotalSeconds;
        var quiet = (int)(now - quietSince).TotalSeconds;
        var lease = lastChangedAt is null ? "the Lease could not be read"
            : string.IsNullOrEmpty(holder) ? $"the Lease has had no holder for {quiet}s"
            : $"its holder {holder} has not renewed it for {quiet}s";
        return $"waited {waited}s to lead (lease duration {(int)leaseDuration.TotalSeconds}s), but {lease}" +
            (lastError is { Length: > 0 } ? $"; last error: {lastError}" : "");
    }
}
