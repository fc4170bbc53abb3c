using System.Text.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;

namespace BatchRunner.Backends;

/// <summary>
/// A backend outside the cluster that the reconciler dispatches BatchJobs to (AWS Batch, for
/// <c>spec.backend: aws-batch</c>). Defined here, where the reconciler consumes it; implemented beside that
/// backend's client. Calls are level-based: the backend is handed what it returned last time
/// (<see cref="ExternalRun.State"/>, kept in the BatchJob's status) and is idempotent for the same run.
/// Transient failures are thrown (the work queue retries with backoff); what retrying cannot fix comes back as a
/// problem on the progress, for a condition.
/// </summary>
public interface IExternalBackend
{
    Backend Backend { get; }

    /// <summary>Observes the run, submits what is due, and says where it stands.</summary>
    /// <param name="checkpoint">Stores the backend's state right away (after each submission), before the call returns.</param>
    Task<ExternalProgress> AdvanceAsync(ExternalRun run, Func<JsonElement, CancellationToken, Task> checkpoint, CancellationToken cancellation);

    /// <summary>Stops everything the run submitted (on cancellation or deletion of the BatchJob).</summary>
    Task<ExternalProgress> CancelAsync(ExternalRun run, string reason, CancellationToken cancellation);
}

/// <summary>One run of a BatchJob as the reconciler hands it to a backend.</summary>
/// <param name="Job">The parsed BatchJob; null when its spec no longer parses (only cancelling is asked then).</param>
/// <param name="Generation">The BatchJob's <c>metadata.generation</c>: a new one is always worth a look.</param>
/// <param name="AllowSubmit">False when results-defining fields changed after dispatch: what runs is followed, nothing new goes.</param>
public sealed record ExternalRun(BatchJob? Job, string Namespace, string Name, string Uid, long Generation, string RunId, JsonElement? State, bool AllowSubmit);

/// <summary>Where a run stands on its backend, for the BatchJob's status.</summary>
/// <param name="Dispatched">Whether dispatch goes on; false with <see cref="Reason"/> and <see cref="Message"/> saying why not.</param>
/// <param name="FailureReason">When <see cref="Phase"/> is Failed: a CamelCase reason for the Failed condition.</param>
/// <param name="PollAfter">When to look again while the run is not finished.</param>
public sealed record ExternalProgress(
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
    JsonElement State,
    TimeSpan PollAfter)
{
    public bool IsTerminal => Phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled;
}
