using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Scheduling;

namespace BatchRunner.Kubernetes.Status;

/// <summary>
/// <c>status</c> of a BatchJob. Everything in it is derived from the cluster (the Job, its pods), so a controller
/// that lost it, or a new leader, writes the same status again.
/// </summary>
public sealed record BatchJobStatus
{
    /// <summary>The status's source-generated metadata, for <see cref="JsonSerializer"/> calls that must stay AOT-safe.</summary>
    public static JsonTypeInfo<BatchJobStatus> TypeInfo => BatchJobStatusJsonContext.Default.BatchJobStatus;

    public RunPhase? Phase { get; init; }
    public long? ObservedGeneration { get; init; }
    public string? RunId { get; init; }
    public string? JobName { get; init; }
    public int? Total { get; init; }
    public int? Succeeded { get; init; }
    public int? Failed { get; init; }
    public int? Active { get; init; }

    /// <summary>
    /// Failed indexes in Kubernetes range notation, e.g. <c>1,3-5</c>: the first <see cref="MaxFailedIndexesText"/>
    /// characters of them, so the status stays bounded whatever the run's size (<see cref="Failed"/> counts them all,
    /// the ledger lists them all).
    /// </summary>
    public string? FailedIndexes { get; init; }

    /// <summary>True when <see cref="FailedIndexes"/> lists only the first of them.</summary>
    public bool? FailedIndexesTruncated { get; init; }

    /// <summary>The longest list of failed indexes a status carries: thousands of scattered indexes, any number of ranges.</summary>
    public const int MaxFailedIndexesText = 32 * 1024;

    public DateTimeOffset? StartTime { get; init; }
    public DateTimeOffset? CompletionTime { get; init; }
    // A setter, not init: source-generated metadata sets every init-only member, an absent one to null, which
    // would lose this default (dotnet/runtime#84484).
    public IReadOnlyList<Condition> Conditions { get; set; } = [];

    /// <summary>
    /// The backend's own state between reconciles (AWS Batch: the arrays it submitted), handed back on its next call:
    /// any backend's, in one place, so a new leader carries on with every backend the same way.
    /// </summary>
    public JsonElement? BackendState { get; init; }

    /// <summary>Where controllers before <see cref="BackendState"/> kept AWS Batch's state: read once, then moved there.</summary>
    [JsonPropertyName("awsBatch")]
    public JsonElement? LegacyAwsBatch { get; init; }

    /// <summary>Where the BatchJob stands in its queue, when the controller schedules: what it may run, why the rest waits, when.</summary>
    public QueueStatus? Queue { get; init; }

    /// <summary>The latest rerun asked through the <c>batchrunner.io/rerun</c> annotation, and what came of it.</summary>
    public RerunStatus? Rerun { get; init; }

    /// <summary>
    /// When its queue's overflow rule split the run: each backend's part, spec.backend's (the lowest indexes) first.
    /// Decided once, before anything was dispatched; null for a run on one backend.
    /// </summary>
    public IReadOnlyList<BackendShare>? Backends { get; init; }

    /// <summary>Derived, not written: the API server would prune it from every status patch anyway.</summary>
    [JsonIgnore]
    public bool IsTerminal => Phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled;

    /// <summary>Nothing of the run went to a backend yet (no work named, no backend state, no split, no rerun): its queue may still split it.</summary>
    [JsonIgnore]
    public bool NothingDispatched => JobName is null && BackendState is null && Backends is null && Rerun is null;

    public Condition? Find(string type) => Conditions.FirstOrDefault(c => c.Type == type);

    public static BatchJobStatus FromJson(JsonElement? element) =>
        element is { ValueKind: JsonValueKind.Object } value ? value.Deserialize(TypeInfo) ?? new BatchJobStatus() : new BatchJobStatus();
}

/// <summary>
/// <c>status.queue</c>. What no longer applies is written as null, which a merge patch removes (a BatchJob admitted
/// in full has no position, no reason and no start estimate left).
/// </summary>
/// <summary>A rerun of chosen indexes of a finished run: the request as written, its number, the indexes it chose.</summary>
public sealed record RerunStatus
{
    /// <summary>The annotation's value this status answers (a new value is a new request).</summary>
    public string Request { get; init; } = "";

    /// <summary>Reruns taken so far (each gave its indexes new attempts); unchanged by a refused request.</summary>
    public int Number { get; init; }

    /// <summary>The indexes of the latest rerun taken, in range notation.</summary>
    public string? Indexes { get; init; }

    /// <summary>Why the request was refused, when it was (the Rerun condition says it too).</summary>
    public string? Refused { get; init; }
}

/// <summary>One backend's part of a run split by its queue's overflow rule: its indexes and where they stand.</summary>
public sealed record BackendShare
{
    /// <summary>The backend's name.</summary>
    public string Name { get; init; } = "";

    /// <summary>Its indexes, in range notation (empty: none stayed on it).</summary>
    public string Indexes { get; init; } = "";

    /// <summary>Indexes it runs at once at most: the parts together keep the spec's parallelism.</summary>
    public int Parallelism { get; init; }

    public RunPhase? Phase { get; init; }
    public int Succeeded { get; init; }
    public int Failed { get; init; }
    public int Active { get; init; }
    public string? FailedIndexes { get; init; }
    public string? JobName { get; init; }

    /// <summary>The backend's own state for this part; the first part's is <see cref="BatchJobStatus.BackendState"/>.</summary>
    public JsonElement? State { get; init; }

    /// <summary>Why its backend does not take the part now, as it said on its last call (for the Overflow condition; not kept).</summary>
    [JsonIgnore]
    public string? Refusal { get; init; }

    [JsonIgnore]
    public bool IsTerminal => Phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled;
}

public sealed record QueueStatus
{
    /// <summary>Its queue's name.</summary>
    public string Name { get; init; } = "";

    /// <summary>Indexes its backend lets run at once now (the allowance applied).</summary>
    public int Allowance { get; init; }

    /// <summary>Indexes it would run at once if nothing held it back.</summary>
    public int Wanted { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public int? Position { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? Reason { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public DateTimeOffset? StartEstimate { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public DateTimeOffset? StartEstimateP90 { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public DateTimeOffset? FinishEstimate { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public DateTimeOffset? FinishEstimateP90 { get; init; }

    /// <summary>The estimates as <c>kubectl get</c> shows them, relative to when they were made.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? Eta { get; init; }

    /// <summary>Index runtimes seen (this run's, else earlier runs' of this BatchJob): what the estimates go by.</summary>
    public RuntimeSummary? Runtimes { get; init; }
}

/// <summary>Source-generated JSON metadata of <see cref="BatchJobStatus"/>: camelCase, nulls left out, enums by name, Kubernetes times.</summary>
[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true,
    Converters = [typeof(KubernetesTimeConverter)])]
[JsonSerializable(typeof(BatchJobStatus))]
public sealed partial class BatchJobStatusJsonContext : JsonSerializerContext;

/// <summary>A Kubernetes-style condition.</summary>
public sealed record Condition(
    string Type,
    string Status,
    string Reason,
    string Message,
    DateTimeOffset LastTransitionTime,
    long? ObservedGeneration);

/// <summary>Condition types and reasons, as constants so that tests and code agree.</summary>
public static class Conditions
{
    /// <summary>The spec parsed and validated.</summary>
    public const string Valid = "Valid";

    /// <summary>The run's work went to its backend (a Job exists, arrays were submitted).</summary>
    public const string Dispatched = "Dispatched";

    /// <summary>The running Job runs the current spec (False: a field that cannot change after dispatch changed).</summary>
    public const string SpecApplied = "SpecApplied";

    /// <summary>Something this cluster cannot do for the BatchJob, and what that costs.</summary>
    public const string Degraded = "Degraded";

    public const string Complete = "Complete";
    public const string Failed = "Failed";

    /// <summary>A finished run's results are compacted to Parquet in its store (False: not yet, or why not).</summary>
    public const string ResultsCompacted = "ResultsCompacted";

    /// <summary>Its queue admitted every index it wants running (False: some wait, and the reason says why).</summary>
    public const string Admitted = "Admitted";

    /// <summary>The latest rerun asked through the annotation: taken (True) or refused (False), with why.</summary>
    public const string Rerun = "Rerun";

    /// <summary>Its queue's overflow rule sent part of the run to another backend (True), or could not (False), with why.</summary>
    public const string Overflow = "Overflow";

    /// <summary>A BatchJob with spec.budget: True while what it may start fits the budget; False once nothing more may start, or no price is known.</summary>
    public const string Budget = "Budget";

    public static class Reasons
    {
        public const string SpecValid = "SpecValid";
        public const string InvalidSpec = "InvalidSpec";
        public const string JobCreated = "JobCreated";
        public const string BackendUnavailable = "BackendUnavailable";
        public const string PlanTooLarge = "PlanTooLarge";
        public const string DispatchFailed = "DispatchFailed";

        /// <summary>The API server refused to create one of the run's objects (a quota, an admission webhook, its size).</summary>
        public const string JobRefused = "JobRefused";
        public const string UpToDate = "UpToDate";
        public const string ImmutableFieldChanged = "ImmutableFieldChanged";
        public const string IndexedJobsUnsupported = "IndexedJobsUnsupported";
        public const string AllIndexesSucceeded = "AllIndexesSucceeded";
        public const string Cancelled = "Cancelled";
        public const string Compacted = "Compacted";
        public const string Compacting = "Compacting";
        public const string CompactionFailed = "CompactionFailed";
        public const string NothingToCompact = "NothingToCompact";
        public const string Admitted = "Admitted";
        public const string RerunTaken = "RerunTaken";
        public const string RerunRefused = "RerunRefused";
        public const string OverflowDispatched = "OverflowDispatched";
        public const string OverflowUnavailable = "OverflowUnavailable";
        public const string OverflowRefused = "OverflowRefused";
    }

    /// <summary>
    /// Sets a condition, keeping its transition time when its status did not change, so that a reconcile that
    /// changes nothing writes nothing new.
    /// </summary>
    public static IReadOnlyList<Condition> With(
        IReadOnlyList<Condition> conditions, string type, bool status, string reason, string message, long generation, DateTimeOffset now)
    {
        var text = status ? "True" : "False";
        var existing = conditions.FirstOrDefault(c => c.Type == type);
        var since = existing is not null && existing.Status == text ? existing.LastTransitionTime : now;
        var updated = new Condition(type, text, reason, message, since, generation);
        return existing is null
            ? [.. conditions, updated]
            : conditions.Select(c => c.Type == type ? updated : c).ToList();
    }
}
