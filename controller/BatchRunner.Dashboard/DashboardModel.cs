using BatchRunner.Reports;

namespace BatchRunner.Dashboard;

/// <summary>
/// What the dashboard shows of one BatchJob: where its run is, as the controller wrote it in its status, and of its
/// spec only the image, backend and queue (never its environment, command or anything else a secret could sit in).
/// </summary>
public sealed record BatchJobView
{
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public string Phase { get; init; } = "Pending";
    public int Total { get; init; }
    public int Succeeded { get; init; }
    public int Failed { get; init; }
    public int Active { get; init; }
    public string? Image { get; init; }

    /// <summary>The backend the spec names (null: the host's default).</summary>
    public string? Backend { get; init; }

    /// <summary>The backends its indexes run on, when the run is split over several (overflow).</summary>
    public IReadOnlyList<BackendShareView> Backends { get; init; } = [];

    public string? Queue { get; init; }
    public int? Position { get; init; }

    /// <summary>Indexes its queue lets run at once now, and how many it would run.</summary>
    public int Allowance { get; init; }
    public int Wanted { get; init; }

    /// <summary>Why it waits (the scheduler's reason, e.g. <c>QueueFull</c>), or null when it does not.</summary>
    public string? WaitReason { get; init; }

    /// <summary>The scheduler's sentence about it (its Admitted condition's message).</summary>
    public string? WaitMessage { get; init; }

    public string? Eta { get; init; }
    public string? RunId { get; init; }
    public DateTimeOffset? Created { get; init; }
    public DateTimeOffset? Started { get; init; }
    public DateTimeOffset? Completed { get; init; }

    /// <summary>The failed indexes in ranges (<c>1,3-5</c>), as the status carries them.</summary>
    public string? FailedIndexes { get; init; }

    public bool FailedIndexesTruncated { get; init; }
    public IReadOnlyList<ConditionView> Conditions { get; init; } = [];

    public bool IsFinished => Phase is "Succeeded" or "Failed" or "Cancelled";

    public bool IsWaiting => WaitReason is not null && !IsFinished;

    /// <summary>Indexes that ended, succeeded or failed.</summary>
    public int Done => Succeeded + Failed;
}

public sealed record BackendShareView(string Name, string Indexes, string Phase, int Succeeded, int Failed, int Active);

public sealed record ConditionView(string Type, string Status, string Reason, string Message, DateTimeOffset? Since);

/// <summary>A queue as its status says: what it holds, whether it is valid, and its tenants' standing.</summary>
public sealed record QueueView
{
    public required string Name { get; init; }
    public string Backends { get; init; } = "";
    public int Pending { get; init; }
    public int Admitted { get; init; }
    public int Waiting { get; init; }

    /// <summary>How its backends' capacity is used, in the scheduler's words.</summary>
    public string? Usage { get; init; }

    public bool Valid { get; init; } = true;
    public string? Message { get; init; }
    public IReadOnlyList<TenantView> Tenants { get; init; } = [];
}

/// <param name="Share">The tenant's fair share of the queue (0–1).</param>
/// <param name="UsageShareSeconds">Its decayed usage, in share-seconds, which fair share ranks tenants by.</param>
public sealed record TenantView(string Name, double Weight, double Share, double UsageShareSeconds, int Admitted, int Pending);

/// <summary>What a host sees now: every BatchJob and queue, as of its last change.</summary>
public interface IDashboardSource
{
    /// <summary>False until the BatchJobs and queues were first listed (the pages then say they are loading).</summary>
    bool HasSynced { get; }

    DashboardSnapshot Current { get; }
}

/// <summary>A run's report and its attempts' logs, from the store the runs write to.</summary>
public interface IDashboardRuns
{
    /// <summary>The store, as its location reads (for the page), or null when the host has none configured.</summary>
    string? Store { get; }

    /// <summary>
    /// The report of the BatchJob's current run, or null when the store holds nothing of it yet. A caller that stops
    /// waiting (<paramref name="cancellation"/>) does not stop the build: the next caller gets its report.
    /// </summary>
    /// <param name="logLink">The dashboard's link to an attempt's log (index, attempt).</param>
    Task<SweepReport?> ReportAsync(BatchJobView batchJob, Func<long, long, string> logLink, CancellationToken cancellation);

    /// <summary>The end of what an attempt of the current run wrote to standard output, or null when there is none.</summary>
    Task<LogTail?> LogAsync(BatchJobView batchJob, int index, int attempt, CancellationToken cancellation);
}

/// <param name="Bytes">The log's whole size.</param>
/// <param name="Text">Its last bytes (all of it when small), as UTF-8.</param>
/// <param name="Truncated">The text is only the end of the log.</param>
public sealed record LogTail(long Bytes, string Text, bool Truncated);

/// <summary>A host without a results store: no reports, no logs.</summary>
public sealed class NoRuns : IDashboardRuns
{
    public string? Store => null;

    public Task<SweepReport?> ReportAsync(BatchJobView batchJob, Func<long, long, string> logLink, CancellationToken cancellation) => Task.FromResult<SweepReport?>(null);

    public Task<LogTail?> LogAsync(BatchJobView batchJob, int index, int attempt, CancellationToken cancellation) => Task.FromResult<LogTail?>(null);
}
