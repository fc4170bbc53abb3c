namespace BatchRunner.Core.Spec;

/// <summary>
/// Explicit limits on what one BatchJob may ask for. They are the intersection of what every backend accepts,
/// so that a spec valid here is valid everywhere (AWS Batch allows 10 attempts; Kubernetes names are DNS labels).
/// </summary>
public static class SpecLimits
{
    /// <summary>Largest document accepted, in bytes (a Kubernetes object must stay well under etcd's 1.5 MiB).</summary>
    public const int MaxDocumentBytes = 1024 * 1024;

    /// <summary>
    /// Most indexes one BatchJob may have (after sweep expansion and repeats). Past what one Indexed Job (100,000
    /// completions) or one AWS Batch array (10,000 children) holds: backends split a run into several.
    /// </summary>
    public const int MaxIndexes = 1_000_000;

    /// <summary>Most indexes running at once for one BatchJob: an Indexed Job's own bound on parallelism.</summary>
    public const int MaxParallelism = 100_000;

    /// <summary>Most attempts per index (AWS Batch's retryStrategy allows 1 to 10).</summary>
    public const int MaxAttempts = 10;

    /// <summary>Largest <c>spec.priority</c> either way (Kubernetes' own bound for user priorities).</summary>
    public const int MaxPriority = 1_000_000_000;

    /// <summary>Longest <c>spec.queue</c>: a DNS label, as the Queue object it names.</summary>
    public const int MaxQueueNameLength = 63;

    /// <summary>Most repeats of each sweep point.</summary>
    public const int MaxRepeats = 10_000;

    /// <summary>Longest <c>metadata.name</c>: a DNS label less room for the suffixes of derived names.</summary>
    public const int MaxNameLength = 50;

    /// <summary>
    /// Longest time value (timeoutSeconds, deadlineSeconds, the retry backoffs): 30 days. Timers of every runtime
    /// involved stop well short of "for ever" (.NET's at 49.7 days), and a sweep that needs longer has no deadline.
    /// </summary>
    public const double MaxSeconds = 30 * 24 * 3600;

    /// <summary>Largest budget: a million dollars, far past any sweep, so a typo of many zeros is caught.</summary>
    public const double MaxBudgetUsd = 1_000_000;

    /// <summary>Most distinct sweep parameters (they become table columns).</summary>
    public const int MaxParameters = 100;
}
