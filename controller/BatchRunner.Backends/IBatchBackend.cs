using System.Text.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;

namespace BatchRunner.Backends;

/// <summary>
/// A place where a BatchJob's indexes run: local processes, a Kubernetes Indexed Job, AWS Batch arrays, or any
/// backend a host registers (<see cref="BackendRegistry"/>). Both hosts drive every backend the same way: the
/// controller's reconciler once per reconcile, the CLI and the controller's local mode in a loop
/// (<see cref="BackendDriver"/>).
/// <para>
/// Calls are level-based: the backend is handed what it returned last time (<see cref="BackendRun.State"/>, kept by
/// the host in a backend-neutral place: the BatchJob's <c>status.backendState</c>, or a state file beside the
/// store) and is idempotent for the same run, so a host that died at any point carries on without submitting
/// anything twice. Transient failures are thrown (the host retries with backoff); what retrying cannot fix comes
/// back on the progress, for a condition.
/// </para>
/// </summary>
public interface IBatchBackend
{
    Backend Backend { get; }

    /// <summary>Observes the run, submits what is due of <see cref="BackendRun.Indexes"/>, and says where it stands.</summary>
    /// <param name="checkpoint">Stores the backend's state right away (after each submission), before the call returns.</param>
    Task<BackendProgress> AdvanceAsync(BackendRun run, BackendCheckpoint checkpoint, CancellationToken cancellation);

    /// <summary>Stops everything the run submitted (the BatchJob was cancelled); says where the run stopped.</summary>
    Task<BackendProgress> CancelAsync(BackendRun run, string reason, CancellationToken cancellation);

    /// <summary>
    /// The BatchJob is being deleted: stops what still runs and removes what the run left. Not released yet means
    /// "look again shortly" (say, a Job whose pods are still going); a problem is reported and not waited for.
    /// </summary>
    Task<BackendRelease> ReleaseAsync(BackendRun run, string reason, CancellationToken cancellation);

    /// <summary>What the backend runs now and how much more it may take, for a scheduler.</summary>
    BackendCapacity Capacity { get; }

    /// <summary>
    /// Whether what a run submits goes by itself with its BatchJob: objects in the cluster it owns, which the garbage
    /// collector removes through their owner references. Such a BatchJob needs no finalizer (one call less to create,
    /// none to delete); the backend is then told to <see cref="Forget"/> it instead of being asked to release it.
    /// </summary>
    bool CollectedWithOwner => false;

    /// <summary>The BatchJob is gone without a release (nothing held it back): drops what the backend keeps in memory of it.</summary>
    void Forget(string ns, string name)
    {
    }

    /// <summary>
    /// Where a run's results go: the spec's store, else the host's (<paramref name="hostStore"/>); null when this
    /// backend collects none for the run (nothing to compact).
    /// </summary>
    string? ResultsStoreOf(BatchJob job, string? hostStore) => job.Spec.Results.Uri is { Length: > 0 } own ? own : hostStore;

    /// <summary>Whether a failure thrown by a call passes by itself (the service had a bad minute): hosts try again.</summary>
    bool IsTransient(Exception error) => false;

    /// <summary>
    /// What one index of the BatchJob costs a second here at <paramref name="prices"/> (for <c>spec.budget</c>): its
    /// requested vCPUs and memory at this backend's price; a backend that bills otherwise (rounded task sizes) says so.
    /// Null when the table has no price for this backend.
    /// </summary>
    double? CostPerIndexSecond(BatchJob job, Core.Costs.PriceTable prices) =>
        prices.For(Backend.Name, null) is { } price
            ? (job.Spec.Resources.MilliCpu / 1000.0 * price.VcpuHour + job.Spec.Resources.MemoryBytes / (double)(1L << 30) * price.GibHour) / 3600
            : null;

    /// <summary>The seconds this backend bills for an index that ran <paramref name="seconds"/> (a minimum, rounding), for <c>spec.budget</c>.</summary>
    double BilledSeconds(double seconds) => seconds;
}

/// <summary>Stores a backend's state for the run at once (it is handed back on the next call).</summary>
public delegate Task BackendCheckpoint(JsonElement state, CancellationToken cancellation);

/// <summary>One run of a BatchJob as a host hands it to a backend.</summary>
/// <param name="Job">The parsed BatchJob; null when its spec no longer parses (only cancelling or releasing is asked then).</param>
/// <param name="Uid">The BatchJob object's uid (its owner for what the backend creates); the run id where there is no object.</param>
/// <param name="Generation">The BatchJob's <c>metadata.generation</c>: a new one is always worth a look.</param>
/// <param name="Indexes">Which of the run's indexes to dispatch: all of them, or a subset to run again (see <see cref="BackendRun.Rerun"/>).</param>
/// <param name="State">What the backend returned last time for this run, or null before its first call.</param>
/// <param name="AllowSubmit">False when results-defining fields changed after dispatch: what runs is followed, nothing new goes.</param>
/// <param name="LastPhase">The run's phase as the host last recorded it.</param>
public sealed record BackendRun(
    BatchJob? Job,
    string Namespace,
    string Name,
    string Uid,
    long Generation,
    string RunId,
    IndexSelection Indexes,
    JsonElement? State,
    bool AllowSubmit,
    RunPhase? LastPhase = null)
{
    public bool WasFinished => LastPhase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled;

    /// <summary>
    /// Indexes the run may have going at once now, as its queue's scheduler decided (0: none starts yet); null where
    /// no scheduler decides (the CLI): its parallelism. A backend starts no index beyond it, and kills none to meet a
    /// lower one: it stops starting new ones until the run is back within it.
    /// </summary>
    public int? Allowance { get; init; }

    /// <summary>
    /// At most this many of the run's indexes ever start, counting from its first (what <c>spec.budget</c> covers);
    /// null: no limit. The allowance it comes with already says it in indexes at once; a backend that starts indexes
    /// in order and knows how many it started (AWS Batch windows) also stops exactly here, whatever finished since
    /// the host last counted.
    /// </summary>
    public int? StartLimit { get; init; }

    /// <summary>
    /// An admission queue outside BatchRunner that admits the run's work instead of an allowance (a Kueue LocalQueue):
    /// a backend that knows it hands the work to it; others ignore it.
    /// </summary>
    public string? ExternalQueue { get; init; }

    /// <summary>
    /// Which rerun of the run the host asks for (0: none): with a subset in <see cref="Indexes"/>, a backend whose
    /// state has taken fewer reruns (<see cref="BackendProgress.Reruns"/>) gives exactly those indexes new attempts,
    /// whatever they came to, in the same run; a rerun it has taken already is followed, never submitted twice.
    /// </summary>
    public int Rerun { get; init; }

    /// <summary>
    /// What the host last recorded of the run (its status; while a rerun is being taken, the outcome with the chosen
    /// indexes already taken out), for a backend whose own objects may be gone by the time it takes a rerun (a
    /// finished Job removed by its TTL); null where the host keeps no such record.
    /// </summary>
    public BackendTally? Recorded { get; init; }

    /// <summary>Indexes to keep going at once: the spec's parallelism, within the allowance.</summary>
    public int ParallelismNow(BatchJob job) => Math.Min(job.Spec.Parallelism, Math.Max(0, Allowance ?? int.MaxValue));
}

/// <summary>A run's counts as a host recorded them: succeeded, failed, and which failed (range notation).</summary>
public sealed record BackendTally(int Succeeded, int Failed, string? FailedIndexes);

/// <summary>
/// A subset of a run's indexes, in Kubernetes range notation (<c>1,3-5</c>), or all of them. A backend that cannot
/// dispatch a subset says so on its progress (reason <see cref="BackendReasons.SubsetUnsupported"/>).
/// </summary>
public sealed record IndexSelection
{
    public static readonly IndexSelection All = new((string?)null);

    private IndexSelection(string? ranges) => Ranges = ranges;

    /// <summary>The chosen indexes as ranges; null for all.</summary>
    public string? Ranges { get; }

    public bool IsAll => Ranges is null;

    public static IndexSelection Of(IEnumerable<int> indexes) => new(IndexRanges.Format(indexes.ToList()));

    public bool Contains(int index) => Ranges is null || IndexRanges.Parse(Ranges).Contains(index);

    public int CountOf(int total) => Ranges is null ? total : IndexRanges.Parse(Ranges).Count(i => i < total);
}

/// <summary>Where a run stands on its backend, for the BatchJob's status (or the CLI's display and summary).</summary>
/// <param name="Dispatched">Whether dispatch goes on; false with <see cref="Reason"/> and <see cref="Message"/> saying why not.</param>
/// <param name="Reason">The Dispatched condition's reason (CamelCase); empty when the backend has nothing to say of it yet.</param>
/// <param name="FailureReason">When <see cref="Phase"/> is Failed: a CamelCase reason for the Failed condition (null: no condition).</param>
/// <param name="State">The backend's state, handed back on its next call; null when it keeps none (everything is derived).</param>
/// <param name="PollAfter">When to look again while the run is not finished.</param>
public sealed record BackendProgress(
    RunPhase Phase,
    int Total,
    int Succeeded,
    int Failed,
    int Active,
    string? FailedIndexes,
    DateTimeOffset? StartTime,
    DateTimeOffset? CompletionTime,
    bool Dispatched,
    string Reason,
    string Message,
    string? FailureReason,
    string? FailureMessage,
    JsonElement? State,
    TimeSpan PollAfter)
{
    public bool IsTerminal => Phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled;

    /// <summary>True when <see cref="FailedIndexes"/> names only the first failed indexes (the backend keeps a bounded list; <see cref="Failed"/> counts them all).</summary>
    public bool FailedIndexesTruncated { get; init; }

    /// <summary>The name the run's work has on the backend (a Job, an array-job prefix), once something went.</summary>
    public string? JobName { get; init; }

    /// <summary>
    /// The run the work the backend found belongs to (a Job's run label), for a host whose record does not name one
    /// yet: work submitted before the host wrote it down is followed as the run it is, not as the current spec's.
    /// </summary>
    public string? RunId { get; init; }

    /// <summary>
    /// The run's work reports back on its own in a moment (a Job just created, or not counted by its controller yet:
    /// its watch event brings the BatchJob back, within <see cref="PollAfter"/> at the latest): the host may leave its
    /// record for that look, writing the dispatch and the first progress in one status write.
    /// </summary>
    public bool ReportsBack { get; init; }

    /// <summary>Whether what runs follows the current spec (null: the backend does not say; the host decides from the run id).</summary>
    public BackendCondition? SpecApplied { get; init; }

    /// <summary>Something the backend cannot do for the run, and what that costs.</summary>
    public BackendCondition? Degraded { get; init; }

    /// <summary>Events the host records on the BatchJob (say, "Created Job …").</summary>
    public IReadOnlyList<BackendEvent> Events { get; init; } = [];

    /// <summary>Failed indexes with what the backend knows of why (the first ones; <see cref="FailedIndexes"/> names all).</summary>
    public IReadOnlyList<FailedIndex> Failures { get; init; } = [];

    /// <summary>Runtimes of the run's finished indexes, when the backend saw them this time (for its queue's estimates).</summary>
    public RuntimeSummary? Runtimes { get; init; }

    /// <summary>Reruns of the run the backend has taken (see <see cref="BackendRun.Rerun"/>); 0 where it keeps no count.</summary>
    public int Reruns { get; init; }

    /// <summary>One line of what ran, for a summary ("2000 attempts in 0:02", "AWS Batch queue q, 4:10").</summary>
    public string? Summary { get; init; }

    /// <summary>
    /// When dispatch is refused: whether the spec or the host's settings are at fault (a user fixes them) rather
    /// than the backend's service refusing (a permission, a quota).
    /// </summary>
    public bool RefusedForInput { get; init; }
}

/// <summary>A condition a backend reports: its status, a CamelCase reason and a message.</summary>
public sealed record BackendCondition(bool Status, string Reason, string Message);

/// <summary>An Event for the BatchJob: type Normal or Warning.</summary>
public sealed record BackendEvent(string Type, string Reason, string Message);

/// <summary>One failed index: attempts made (0 when unknown) and the last reason.</summary>
public sealed record FailedIndex(int Index, int Attempts, string? Reason);

/// <summary>What deleting a BatchJob's run has come to.</summary>
/// <param name="Released">Nothing of the run is left to wait for.</param>
/// <param name="Problem">What could not be stopped for good (reported, not waited for).</param>
public sealed record BackendRelease(bool Released, BackendCondition? Problem = null)
{
    public static readonly BackendRelease Done = new(true);
    public static readonly BackendRelease NotYet = new(false);
}

/// <summary>
/// What a backend runs now and how much more it may take, in terms a scheduler uses.
/// </summary>
/// <param name="RunningIndexes">Indexes running now, across every BatchJob this backend runs.</param>
/// <param name="MilliCpuInUse">CPU requested by what runs, in millicores.</param>
/// <param name="MemoryBytesInUse">Memory requested by what runs.</param>
/// <param name="FreeIndexes">How many more indexes it may start now; null when the backend sets no limit of its own.</param>
public sealed record BackendCapacity(int RunningIndexes, long MilliCpuInUse, long MemoryBytesInUse, int? FreeIndexes)
{
    public static readonly BackendCapacity Unknown = new(0, 0, 0, null);
}

/// <summary>Reasons every backend and host share.</summary>
public static class BackendReasons
{
    /// <summary>The backend cannot dispatch a subset of a run's indexes.</summary>
    public const string SubsetUnsupported = "SubsetUnsupported";

    /// <summary>The runner itself failed (its store, its host), not the workload.</summary>
    public const string RunnerFailed = "RunnerFailed";

    /// <summary>Nothing is dispatched yet: the run's queue lets no index start (its Admitted condition says why).</summary>
    public const string Queued = "Queued";
}
