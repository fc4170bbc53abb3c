using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Scheduling;

/// <summary>What one backend may run for a queue at once: indexes, and the cpu and memory they request.</summary>
public sealed record Quota(int Indexes, long MilliCpu, long MemoryBytes)
{
    public static readonly Quota Unlimited = new(int.MaxValue, long.MaxValue, long.MaxValue);
}

/// <summary>
/// A queue: where its BatchJobs may run, how much each backend may run for it at once, how tenants (namespaces)
/// share it, and how fast past usage is forgotten.
/// </summary>
/// <param name="Quotas">Per backend; a backend of <paramref name="Backends"/> without an entry has no limit of the queue's own.</param>
/// <param name="TenantWeights">A tenant's weight; one not listed has <paramref name="DefaultWeight"/>.</param>
/// <param name="UsageHalfLife">After this long, past usage counts half as much against a tenant's share.</param>
public sealed record QueueDefinition(
    string Name,
    IReadOnlyList<Backend> Backends,
    IReadOnlyDictionary<Backend, Quota> Quotas,
    IReadOnlyDictionary<string, double> TenantWeights,
    double DefaultWeight,
    TimeSpan UsageHalfLife)
{
    public const string DefaultName = "default";

    /// <summary>The priority classes every queue has unless it names them otherwise.</summary>
    public static readonly IReadOnlyDictionary<string, int> BuiltInPriorityClasses =
        new Dictionary<string, int>(StringComparer.Ordinal) { ["low"] = -100, ["normal"] = 0, ["high"] = 100 };

    /// <summary>Named priorities BatchJobs of this queue may give (<c>spec.priority: high</c>).</summary>
    public IReadOnlyDictionary<string, int> PriorityClasses { get; init; } = BuiltInPriorityClasses;

    /// <summary>The tenants (namespaces) whose BatchJobs may use the queue; null for every one.</summary>
    public IReadOnlySet<string>? Namespaces { get; init; }

    public bool Admits(string tenant) => Namespaces is null || Namespaces.Contains(tenant);

    /// <summary>
    /// A Kueue LocalQueue that admits this queue's work on Kubernetes instead of BatchRunner's own allowance (clusters
    /// that run Kueue); null: BatchRunner schedules it.
    /// </summary>
    public string? KueueLocalQueue { get; init; }

    /// <summary>
    /// When a BatchJob's indexes wait on one of the queue's backends, whether and when they go to the next backend in
    /// <see cref="Backends"/>; null: they wait.
    /// </summary>
    public OverflowRule? Overflow { get; init; }

    /// <summary>The backend after <paramref name="backend"/> in the queue's order, when the queue overflows and there is one.</summary>
    public Backend? OverflowAfter(Backend backend)
    {
        if (Overflow is null)
        {
            return null;
        }

        var at = Backends.ToList().IndexOf(backend);
        return at >= 0 && at + 1 < Backends.Count ? Backends[at + 1] : null;
    }

    public double WeightOf(string tenant) => TenantWeights.TryGetValue(tenant, out var weight) ? weight : DefaultWeight;

    public Quota QuotaOf(Backend backend) => Quotas.TryGetValue(backend, out var quota) ? quota : Quota.Unlimited;
}

/// <summary>
/// A queue's rule for overflow: a BatchJob whose next index would wait longer than <paramref name="After"/> on its
/// backend (zero: as soon as the queue holds any of its indexes back) sends its waiting indexes to the next backend.
/// </summary>
public sealed record OverflowRule(TimeSpan After);

/// <summary>
/// One BatchJob as the scheduler sees it: who it belongs to, how it ranks, what it may still run and what runs now.
/// </summary>
/// <param name="Key">namespace/name.</param>
/// <param name="Tenant">Its namespace.</param>
/// <param name="Sequence">Arrival order (its creation), for first-come-first-served among equals.</param>
/// <param name="Parallelism">Indexes it may run at once at most (its spec).</param>
/// <param name="Remaining">Indexes not finished yet (running ones included).</param>
/// <param name="Running">Indexes running now: never taken away (no index is killed to make room).</param>
/// <param name="AppliedAllowance">The allowance its backend enforces now (the last one applied), 0 before any.</param>
public sealed record Workload(
    string Key,
    string Tenant,
    string Queue,
    Backend Backend,
    int Priority,
    long Sequence,
    int Parallelism,
    int Remaining,
    int Running,
    long MilliCpuPerIndex,
    long MemoryBytesPerIndex,
    string? PriorityClass = null,
    int AppliedAllowance = 0)
{
    /// <summary>Indexes it could run at once if nothing held it back.</summary>
    public int Wanted => Math.Max(Running, Math.Min(Parallelism, Remaining));

    /// <summary>
    /// What it holds of its pool: what runs, or the allowance its backend still enforces when that is more (a lowered
    /// allowance is not in force until its backend applied it, so the room it frees is not given away before).
    /// </summary>
    public int Held => Math.Max(Running, Math.Min(AppliedAllowance, Math.Max(Running, Remaining)));
}

/// <summary>Why a workload has indexes waiting (the reasons of its condition).</summary>
public static class WaitReasons
{
    public const string QuotaExhausted = "QuotaExhausted";
    public const string TenantOverShare = "TenantOverShare";
    public const string BehindHigherPriority = "BehindHigherPriority";
    public const string NoBackendAvailable = "NoBackendAvailable";
    public const string QueueNotFound = "QueueNotFound";
    public const string PriorityClassNotFound = "PriorityClassNotFound";
    public const string NamespaceNotAllowed = "NamespaceNotAllowed";

    /// <summary>Admitted, but its backend does not take the work now (its service refuses or limits it): the backend's words say why.</summary>
    public const string BackendThrottled = "BackendThrottled";

    /// <summary>Not a wait: the queue hands admission of its Kubernetes work to a Kueue LocalQueue.</summary>
    public const string DelegatedToKueue = "DelegatedToKueue";
}

/// <summary>What the scheduler decided for one workload.</summary>
/// <param name="Allowance">Indexes it may run at once now (at most what it wants; below what runs, none starts).</param>
/// <param name="Reason">Why indexes wait, when some do (see <see cref="WaitReasons"/>); null when none waits.</param>
/// <param name="Position">Its place among the waiting workloads of its queue (1 is served next), when it waits.</param>
public sealed record Admission(string Key, int Allowance, string? Reason, string? Message, int? Position)
{
    /// <summary>The Kueue LocalQueue admitting it instead, when its queue delegates.</summary>
    public string? DelegatedTo { get; init; }

    public bool IsWaiting => Reason is not null;
}

/// <summary>A tenant's past use of a queue: dominant-share·seconds, decayed by the queue's half-life.</summary>
public sealed record TenantUsage(string Queue, string Tenant, double ShareSeconds, DateTimeOffset At)
{
    /// <summary>The usage as of <paramref name="now"/>: the past halves every half-life, and what ran since is added.</summary>
    public TenantUsage Advance(DateTimeOffset now, double shareSinceThen, TimeSpan halfLife)
    {
        var elapsed = Math.Max(0, (now - At).TotalSeconds);
        var decay = halfLife <= TimeSpan.Zero ? 0 : Math.Pow(0.5, elapsed / halfLife.TotalSeconds);
        return this with { ShareSeconds = ShareSeconds * decay + shareSinceThen * elapsed, At = now };
    }

    /// <summary>The usage as an average share over one half-life: comparable with a share held now.</summary>
    public double AverageShare(TimeSpan halfLife) => halfLife <= TimeSpan.Zero ? 0 : ShareSeconds / halfLife.TotalSeconds;
}
