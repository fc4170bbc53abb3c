using System.Globalization;
using System.Text.Json;
using BatchRunner.Backends;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Core.Costs;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Compaction;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>What a reconcile asks of the queue: nothing, or another look after a while.</summary>
public readonly record struct ReconcileResult(TimeSpan? RequeueAfter)
{
    /// <summary>The status write was left for the run's first report (or for arrivals to pause, when the controller is busy).</summary>
    public bool AwaitsReport { get; init; }

    public static readonly ReconcileResult Done = new(null);

    public static ReconcileResult After(TimeSpan delay) => new(delay);
}

/// <summary>
/// Brings one BatchJob's world in line with its spec, level-based and idempotent, through the backend its
/// <c>spec.backend</c> names (<see cref="IBatchBackend"/>, looked up in the <see cref="BackendRegistry"/>): every call
/// reads what exists and asks the backend only for what is missing, so running it twice, or after the controller
/// died at any point, never dispatches twice. Its status is derived from what the backend reports each time, and a
/// backend's own state is kept in <c>status.backendState</c>. An exception means "retry with backoff". A finalizer
/// is held only by a BatchJob whose backend work would outlive it (the Kubernetes backend's Jobs are owned by it and
/// go with it).
/// A finished run with a results store is handed to the <see cref="CompactionWorker"/>, when the host has one.
/// With an <see cref="AdmissionBoard"/> (the host schedules queues), the backend runs no more indexes at once than
/// the scheduler admitted, and the status says where the BatchJob stands in its queue.
/// </summary>
public sealed partial class BatchJobReconciler(
    IClusterApi cluster, BackendRegistry backends, string? resultsStore, TimeProvider time, ILogger<BatchJobReconciler> log, CompactionWorker? compaction = null,
    AdmissionBoard? admissions = null, PriceTable? prices = null, ParsedSpecs? specs = null)
{
    private readonly ParsedSpecs _specs = specs ?? new();

    private static readonly TimeSpan WhileDeleting = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How soon to look again when the scheduler has not decided for a BatchJob yet (a new one, a new leader). Its
    /// next cycle reconciles the BatchJob anyway; this look is the fallback, and sooner would only double the
    /// reconciles of every BatchJob in a burst.
    /// </summary>
    internal static readonly TimeSpan AwaitingDecision = TimeSpan.FromSeconds(2);

    /// <summary>A reconciler with the Kubernetes backend on <paramref name="cluster"/> and the host's other backends.</summary>
    public BatchJobReconciler(
        IClusterApi cluster, DispatchSettings settings, TimeProvider time, ILoggerFactory logs, IEnumerable<IBatchBackend>? others = null, CompactionWorker? compaction = null)
        : this(cluster, Registry(cluster, settings, logs, others ?? [], [], time), settings.Results?.Uri, time, logs.CreateLogger<BatchJobReconciler>(), compaction)
    {
    }

    /// <summary>Local processes never run beside an operator: a local BatchJob applied to a cluster is refused, saying where it runs.</summary>
    public static readonly DisabledBackend LocalBesideOperator =
        new(Backend.Local, "local BatchJobs run with `batchrunner run`, or in a controller with BatchRunner:Kubernetes:Enabled=false");

    /// <summary>The backends of a controller on a cluster: Kubernetes first, then the others it was given.</summary>
    public static BackendRegistry Registry(
        IClusterApi cluster, DispatchSettings settings, ILoggerFactory logs, IEnumerable<IBatchBackend> others, IEnumerable<DisabledBackend> disabled, TimeProvider? time = null) =>
        new("this controller", [new KubernetesJobBackend(cluster, settings, logs.CreateLogger<KubernetesJobBackend>(), time), .. others], [.. disabled, LocalBesideOperator]);

    public async Task<ReconcileResult> ReconcileAsync(string key, CancellationToken cancellation)
    {
        // 1. Get the BatchJob; gone means there is nothing left to do (what it owned goes with it).
        var batchJob = cluster.GetBatchJob(key);
        if (batchJob is null)
        {
            var (ns, name) = ObjectKey.Split(key);
            backends.Forget(ns, name);
            compaction?.Forget(key);
            _specs.Forget(key);
            return ReconcileResult.Done;
        }

        using var scope = log.BeginScope(new Dictionary<string, object?> { ["BatchJob"] = key, ["Generation"] = batchJob.Metadata.Generation });

        // 2. Being deleted: stop and remove the backend's work, then let go.
        if (batchJob.Metadata.DeletionTimestamp is not null)
        {
            return await FinalizeAsync(batchJob, cancellation).ConfigureAwait(false);
        }

        var generation = batchJob.Metadata.Generation ?? 0;
        var previous = BatchJobStatus.FromJson(batchJob.Status);
        var now = time.GetUtcNow();

        // 4. Validate with the same parser as every other door, and find the backend among this controller's; an
        //    invalid spec is a condition, not an error to retry.
        var parsed = _specs.Of(batchJob);
        IBatchBackend? backend = null;
        SpecError? unavailable = null;
        if (!parsed.IsValid || !backends.TryResolve(parsed.Job!.Spec.Backend, out backend, out unavailable))
        {
            var message = string.Join("; ", parsed.IsValid ? [unavailable!] : parsed.Errors);
            var invalid = previous with
            {
                Phase = RunPhase.Failed,
                ObservedGeneration = generation,
                Conditions = Conditions.With(previous.Conditions, Conditions.Valid, false,
                    parsed.IsValid ? Conditions.Reasons.BackendUnavailable : Conditions.Reasons.InvalidSpec, message, generation, now),
            };
            await PublishAsync(batchJob, previous, invalid, cancellation).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        // 4b. Hold a finalizer, before anything is written, when work may go where it does not go with the BatchJob by
        //     itself: its backend's, a part's of a split run, or the backend its queue overflows to. Work in the cluster
        //     it owns (the Kubernetes backend's Jobs) is collected through owner references and needs none.
        if (!HoldsFinalizer(batchJob) && NeedsFinalizer(backend!, previous.Backends, admissions?.Find(key)?.Overflow?.To))
        {
            batchJob = await cluster.SetFinalizersAsync(batchJob, [.. batchJob.Metadata.Finalizers ?? [], BatchJobResource.Finalizer], cancellation).ConfigureAwait(false);
        }

        var job = parsed.Job!;
        var status = previous with
        {
            // A Failed phase with nothing ever dispatched (an invalid spec, a plan too large) is no outcome: a fixed spec dispatches.
            Phase = previous.Phase == RunPhase.Failed && previous.JobName is null ? RunPhase.Pending : previous.Phase,
            ObservedGeneration = generation,
            Total = job.Spec.Completions,
            Conditions = Conditions.With(previous.Conditions, Conditions.Valid, true, Conditions.Reasons.SpecValid, "the spec is valid", generation, now),
        };

        // 5. The run: the one dispatched, or the current spec's when nothing went yet. A run whose results-defining
        //    fields changed after dispatch is followed, and nothing new is submitted for it.
        var current = RunIdentity.For(job);
        var runId = status.JobName is not null ? previous.RunId ?? current : current;
        var run = RunOf(batchJob, job, generation, runId, status.BackendState ?? status.LegacyAwsBatch, status.Phase) with { AllowSubmit = runId == current };

        // 6. A cancelled BatchJob keeps its outcome; what it submitted is stopped once.
        if (IsCancelRequested(batchJob) || previous.Phase == RunPhase.Cancelled)
        {
            return await CancelAsync(batchJob, backend!, run, previous, status, key, cancellation).ConfigureAwait(false);
        }

        // 7. A rerun asked through the annotation is taken once the run finished by itself; the backend then gives the
        //    chosen indexes new attempts (each reconcile hands it the rerun it follows).
        var rerun = WithRerunRequest(status, RerunRequested(batchJob), generation, now);
        if (rerun.Rerun != status.Rerun)
        {
            // Recorded at once, so the queue's scheduler sees the chosen indexes waiting and the request is taken once.
            var condition = rerun.Find(Conditions.Rerun)!;
            log.LogInformation("{BatchJob}: {Message}", job.Metadata.Name, condition.Message);
            await RecordAsync(batchJob, condition.Status == "True" ? "Normal" : "Warning", condition.Reason, condition.Message, cancellation).ConfigureAwait(false);
            compaction?.Forget(key);
            await PublishAsync(batchJob, previous, rerun, cancellation).ConfigureAwait(false);
            previous = rerun;
        }

        status = rerun;
        if (status.Rerun is { Number: > 0, Indexes: { } rerunIndexes } taken)
        {
            run = run with
            {
                Indexes = IndexSelection.Of(IndexRanges.Parse(rerunIndexes)),
                Rerun = taken.Number,
                Recorded = new BackendTally(status.Succeeded ?? 0, status.Failed ?? 0, status.FailedIndexes),
                LastPhase = status.Phase,
            };
        }

        // 8. A finished run asks nothing more of its backend; its results are compacted.
        if (status.IsTerminal)
        {
            status = await WithCompactionAsync(batchJob, key, backend!, job, status, cancellation).ConfigureAwait(false);
            await PublishAsync(batchJob, previous, status, cancellation).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        // 9. Its queue's allowance: nothing goes beyond what the scheduler admitted, and nothing new before it decided.
        Standing? standing = null;
        if (admissions is not null)
        {
            standing = admissions.Find(key);
            if (standing is null)
            {
                // The scheduler reconciles it once it decided; this look is the fallback.
                return ReconcileResult.After(AwaitingDecision);
            }

            // Admitted in full, the backend runs the spec's parallelism (no cap to churn as the run's tail shrinks).
            run = standing.DelegatedTo is { } kueue ? run with { ExternalQueue = kueue } : run with { Allowance = standing.IsWaiting ? standing.Allowance : null };
        }

        // 9b. Its budget (spec.budget): nothing starts that the projected cost would not cover; once nothing may start
        //     and nothing runs, the run ends Failed (BudgetReached) and what it submitted is stopped.
        var budget = RunBudget.Standing(backend!, job, prices ?? PriceTable.Defaults, status.Succeeded ?? 0, status.Failed ?? 0, status.Active ?? 0, status.Queue?.Runtimes);
        if (budget is { Reached: true } && (status.Active ?? 0) == 0 && status.JobName is not null)
        {
            return await EndForBudgetAsync(batchJob, job, backend!, run, budget, previous, status, generation, cancellation).ConfigureAwait(false);
        }

        run = RunBudget.Capped(run, budget);

        // 10. Overflow: its queue sends the waiting indexes of a run not dispatched yet to the next backend. The split
        //     is recorded before anything goes, so it is decided once; an index then stays on the backend it went to.
        if (standing?.Overflow is { } plan && status.NothingDispatched && run.AllowSubmit)
        {
            status = await SplitAsync(batchJob, job, backend!, plan, standing.Queue, previous, status, cancellation).ConfigureAwait(false);
            previous = status;
        }

        // 11. The backend observes, submits what is due, and says where the run stands (each backend its part, for a
        //     split run); its state is checkpointed in the status after each submission, so a controller that dies
        //     right after one finds it recorded.
        var checkpointed = status;
        BackendCheckpoint CheckpointOf(int part) => async (state, token) =>
        {
            checkpointed = checkpointed with { RunId = runId, JobName = checkpointed.JobName ?? $"{job.Metadata.Name}-{runId}", LegacyAwsBatch = null };
            checkpointed = part == 0
                ? checkpointed with { BackendState = state }
                : checkpointed with { Backends = [.. checkpointed.Backends!.Select((share, i) => i == part ? share with { State = state } : share)] };
            await cluster.PatchStatusAsync(batchJob, checkpointed, token).ConfigureAwait(false);
        };

        BackendProgress progress;
        IReadOnlyList<BackendShare>? shares = null;
        if (status.Backends is { } split && run.Rerun == 0)
        {
            (progress, shares) = await AdvancePartsAsync(key, job, backend!, run, split, CheckpointOf, cancellation).ConfigureAwait(false);
        }
        else
        {
            progress = await backend!.AdvanceAsync(run, CheckpointOf(0), cancellation).ConfigureAwait(false);
        }

        // 12. Status and conditions from the progress and the queue, and what the backend asked to be recorded. Work
        //     found before the status named its run is that run's, whatever the spec says now.
        if (progress.RunId is { } found && status.JobName is null && found != runId)
        {
            runId = found;
        }

        if (progress.ReportsBack && status.Backends is null && standing?.Overflow is null)
        {
            // Its first report (a Job's first count, through the Job watch) brings the BatchJob back: that look writes the
            // dispatch and the first progress as one status write, and the events of what changed then. Only the
            // backend's own events are this call's to say.
            await RecordEventsAsync(batchJob, progress, cancellation).ConfigureAwait(false);
            return ReconcileResult.After(progress.PollAfter) with { AwaitsReport = true };
        }

        now = time.GetUtcNow();
        var next = WithProgress(status, progress, job.Metadata.Name, runId, generation, now, AllowSubmitMessage(run));
        if (standing is not null)
        {
            next = WithStanding(next, standing, progress, generation, now, backend!.Backend.Name);
        }

        if (shares is not null)
        {
            next = await WithPartsAsync(batchJob, next, shares, generation, now, cancellation).ConfigureAwait(false);
        }

        next = WithBudget(next, budget, generation, now);
        await RecordChangesAsync(batchJob, job, previous, next, progress, cancellation).ConfigureAwait(false);

        // 13. A finished run's results are compacted (off this path); a condition says how far that got.
        next = await WithCompactionAsync(batchJob, key, backend!, job, next, cancellation).ConfigureAwait(false);
        await PublishAsync(batchJob, previous, next, cancellation).ConfigureAwait(false);
        return progress.IsTerminal ? ReconcileResult.Done : ReconcileResult.After(progress.PollAfter);
    }

    /// <summary>The Budget condition of a BatchJob with spec.budget: True while within it, False once reached or unpriced.</summary>
    public static BatchJobStatus WithBudget(BatchJobStatus status, BudgetStanding? budget, long generation, DateTimeOffset now) =>
        budget is null ? status : status with
        {
            Conditions = Conditions.With(status.Conditions, Conditions.Budget, budget.Reason is not (BudgetStanding.BudgetReached or BudgetStanding.NoPrice),
                budget.Reason, budget.Message, generation, now),
        };

    /// <summary>
    /// The budget is reached and nothing runs: what the run submitted is stopped (no index left to start ever will), and
    /// it ends Failed with reason BudgetReached; what it did is kept.
    /// </summary>
    private async Task<ReconcileResult> EndForBudgetAsync(
        BatchJobObject batchJob, BatchJob job, IBatchBackend backend, BackendRun run, BudgetStanding budget, BatchJobStatus previous, BatchJobStatus status, long generation,
        CancellationToken cancellation)
    {
        var stopped = await backend.CancelAsync(run, BudgetStanding.BudgetReached, cancellation).ConfigureAwait(false);
        var now = time.GetUtcNow();
        var next = WithBudget(WithProgress(status, RunBudget.Ended(stopped, budget), job.Metadata.Name, run.RunId, generation, now), budget, generation, now);
        log.LogWarning("{BatchJob}: budget reached, the run ends: {Message}", job.Metadata.Name, budget.Message);
        await RecordAsync(batchJob, "Warning", BudgetStanding.BudgetReached, budget.Message, cancellation).ConfigureAwait(false);
        await PublishAsync(batchJob, previous, next, cancellation).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    /// <summary>The status a backend's progress makes: counts and times, the Dispatched, SpecApplied, Degraded and outcome conditions.</summary>
    public static BatchJobStatus WithProgress(BatchJobStatus status, BackendProgress progress, string name, string runId, long generation, DateTimeOffset now, string? refusedChange = null)
    {
        var failedIndexes = IndexRanges.Truncate(progress.FailedIndexes, BatchJobStatus.MaxFailedIndexesText, out var cut);
        var next = status with
        {
            Phase = progress.Phase,
            RunId = runId,
            // Named only once something may have gone (a run refused before that stays undispatched, so a fixed spec goes);
            // a backend that names nothing itself has its work named after the BatchJob and the run.
            JobName = progress.JobName ?? status.JobName ?? (progress.Dispatched ? $"{name}-{runId}" : null),
            Total = progress.Total,
            Succeeded = progress.Succeeded,
            Failed = progress.Failed,
            Active = progress.Active,
            FailedIndexes = failedIndexes,
            FailedIndexesTruncated = cut || progress.FailedIndexesTruncated ? true : null,
            StartTime = progress.StartTime ?? status.StartTime,
            CompletionTime = progress.CompletionTime,
            BackendState = progress.State ?? status.BackendState ?? status.LegacyAwsBatch,
            LegacyAwsBatch = null,
        };
        var conditions = next.Conditions;
        if (progress.Reason.Length > 0)
        {
            conditions = Conditions.With(conditions, Conditions.Dispatched, progress.Dispatched, progress.Reason, progress.Message, generation, now);
        }

        if ((progress.SpecApplied ?? (refusedChange is null ? null : new BackendCondition(false, Conditions.Reasons.ImmutableFieldChanged, refusedChange))) is { } applied)
        {
            conditions = Conditions.With(conditions, Conditions.SpecApplied, applied.Status, applied.Reason, applied.Message, generation, now);
        }

        if (progress.Degraded is { } degraded)
        {
            conditions = Conditions.With(conditions, Conditions.Degraded, degraded.Status, degraded.Reason, degraded.Message, generation, now);
        }

        conditions = progress.Phase switch
        {
            RunPhase.Succeeded => Conditions.With(conditions, Conditions.Complete, true, Conditions.Reasons.AllIndexesSucceeded, $"all {next.Total} indexes succeeded", generation, now),
            RunPhase.Failed when progress.FailureReason is { } reason => Conditions.With(conditions, Conditions.Failed, true, reason,
                next.FailedIndexes is { } failed && progress.FailureMessage?.Contains("failed indexes:", StringComparison.Ordinal) != true
                    ? $"{progress.FailureMessage}; failed indexes: {FirstOf(failed, next)}" : progress.FailureMessage ?? "failed", generation, now),
            _ => conditions,
        };
        return next with { Conditions = conditions };
    }

    /// <summary>The longest list of failed indexes a condition's message carries; the status's field has more.</summary>
    private const int MaxFailedIndexesInMessage = 1024;

    private static string FirstOf(string failed, BatchJobStatus status) =>
        IndexRanges.Truncate(failed, MaxFailedIndexesInMessage, out var cut) is { } shown && (cut || status.FailedIndexesTruncated == true)
            ? string.Create(CultureInfo.InvariantCulture, $"{shown}, … ({status.Failed} in all)")
            : failed;

    /// <summary>
    /// A rerun request (the annotation's value) against the status: a new one is taken when the run finished by itself
    /// (Succeeded or Failed): the chosen indexes leave the outcome, the phase goes back to Running and the outcome's
    /// conditions and compaction go until the rerun ends; one that chooses nothing is refused with why. A request
    /// while the run goes waits for its end; a cancelled run is not rerun. The status says what came of each request.
    /// </summary>
    public static BatchJobStatus WithRerunRequest(BatchJobStatus status, string? request, long generation, DateTimeOffset now)
    {
        if (request is null || request == status.Rerun?.Request || status.Phase is not (RunPhase.Succeeded or RunPhase.Failed))
        {
            return status;
        }

        var number = status.Rerun?.Number ?? 0;
        IReadOnlyList<int>? chosen;
        string? error;
        if (status.FailedIndexesTruncated == true)
        {
            // What a rerun keeps of the earlier outcome is reckoned from the list: a partial one would lose failures.
            chosen = null;
            error = string.Create(CultureInfo.InvariantCulture,
                $"the run has {status.Failed} failed indexes, more than its status lists; resubmit the points to run again as a new BatchJob (the ledger lists every failed index)");
        }
        else
        {
            chosen = RerunRequest.Resolve(request, status.Total ?? 0, status.FailedIndexes, out error);
        }

        if (chosen is null)
        {
            var refused = $"rerun \"{request}\" refused: {error}";
            return status with
            {
                Rerun = new RerunStatus { Request = request, Number = number, Indexes = status.Rerun?.Indexes, Refused = error },
                Conditions = Conditions.With(status.Conditions, Conditions.Rerun, false, Conditions.Reasons.RerunRefused, refused, generation, now),
            };
        }

        var ranges = IndexRanges.Format(chosen);
        var failedBefore = IndexRanges.Parse(status.FailedIndexes).ToHashSet();
        var wereFailed = chosen.Count(failedBefore.Contains);
        failedBefore.ExceptWith(chosen);
        return status with
        {
            // The chosen indexes leave the outcome: what the backend reports from now on adds theirs back.
            Phase = RunPhase.Running,
            CompletionTime = null,
            Succeeded = Math.Max(0, (status.Succeeded ?? 0) - (chosen.Count - wereFailed)),
            Failed = Math.Max(0, (status.Failed ?? 0) - wereFailed),
            FailedIndexes = failedBefore.Count == 0 ? null : IndexRanges.Format(failedBefore),
            Rerun = new RerunStatus { Request = request, Number = number + 1, Indexes = ranges },
            Conditions = Conditions.With(
                status.Conditions.Where(c => c.Type is not (Conditions.Complete or Conditions.Failed or Conditions.ResultsCompacted)).ToList(),
                Conditions.Rerun, true, Conditions.Reasons.RerunTaken,
                string.Create(CultureInfo.InvariantCulture, $"rerun {number + 1}: {chosen.Count} of {status.Total} indexes get new attempts ({ranges})"), generation, now),
        };
    }

    private static string? RerunRequested(BatchJobObject batchJob) =>
        batchJob.Metadata.Annotations is { } annotations && annotations.TryGetValue(BatchJobResource.RerunAnnotation, out var value) && value.Length > 0 ? value : null;

    /// <summary>
    /// Where the BatchJob stands in its queue, as the backend applied it: the allowance, why the rest waits, its place
    /// and estimates, and the Admitted condition. A finished run waits for nothing: its place and estimates go.
    /// </summary>
    /// <param name="backend">The backend's name, for a condition saying it does not take admitted work.</param>
    public static BatchJobStatus WithStanding(BatchJobStatus status, Standing standing, BackendProgress progress, long generation, DateTimeOffset now, string backend = "its backend")
    {
        var runtimes = progress.Runtimes ?? status.Queue?.Runtimes;
        if (progress.IsTerminal)
        {
            return status with
            {
                Queue = new QueueStatus { Name = standing.Queue, Runtimes = runtimes },
                Conditions = status.Find(Conditions.Admitted) is null ? status.Conditions
                    : Conditions.With(status.Conditions, Conditions.Admitted, true, Conditions.Reasons.Admitted, "finished: nothing waits", generation, now),
            };
        }

        var waiting = standing.IsWaiting;
        // Admitted, and the backend's service declines the work (a refusal of the spec itself is the Valid/Dispatched story).
        var (reason, message) = standing.Allowance > 0 && !progress.Dispatched && !progress.RefusedForInput && progress.Reason is { Length: > 0 } refused && refused != BackendReasons.Queued
            ? (WaitReasons.BackendThrottled, $"{standing.Allowance} of {standing.Wanted} indexes admitted in queue {standing.Queue}, but {backend} does not take them now: {refused}: {progress.Message}")
            : (standing.Reason ?? (standing.DelegatedTo is null ? Conditions.Reasons.Admitted : WaitReasons.DelegatedToKueue), StandingText.Message(standing, now));
        // Estimates drift by seconds from one cycle to the next: the ones shown stay until they move as far as the
        // board needs to bring the BatchJob back, so a write for something else does not carry the drift.
        var shown = status.Queue;
        return status with
        {
            Queue = new QueueStatus
            {
                Name = standing.Queue,
                Allowance = standing.Allowance,
                Wanted = standing.Wanted,
                Position = waiting ? standing.Position : null,
                Reason = standing.Reason,
                StartEstimate = AdmissionBoard.Settled(shown?.StartEstimate, waiting && standing.Allowance == 0 ? standing.StartP50 : null, now),
                StartEstimateP90 = AdmissionBoard.Settled(shown?.StartEstimateP90, waiting && standing.Allowance == 0 ? standing.StartP90 : null, now),
                FinishEstimate = AdmissionBoard.Settled(shown?.FinishEstimate, standing.FinishP50, now),
                FinishEstimateP90 = AdmissionBoard.Settled(shown?.FinishEstimateP90, standing.FinishP90, now),
                Eta = StandingText.Eta(standing, now),
                Runtimes = runtimes,
            },
            Conditions = Conditions.With(status.Conditions, Conditions.Admitted, !waiting && reason != WaitReasons.BackendThrottled, reason, message, generation, now),
        };
    }

    private async Task RecordEventsAsync(BatchJobObject batchJob, BackendProgress progress, CancellationToken cancellation)
    {
        foreach (var recorded in progress.Events)
        {
            await RecordAsync(batchJob, recorded.Type, recorded.Reason, recorded.Message, cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>Events for what changed: the backend's own, a new refusal to dispatch, a new refusal of a spec change.</summary>
    private async Task RecordChangesAsync(BatchJobObject batchJob, BatchJob job, BatchJobStatus previous, BatchJobStatus next, BackendProgress progress, CancellationToken cancellation)
    {
        await RecordEventsAsync(batchJob, progress, cancellation).ConfigureAwait(false);

        var dispatched = next.Find(Conditions.Dispatched);
        if (!progress.Dispatched && progress.Reason != BackendReasons.Queued && dispatched is not null && previous.Find(Conditions.Dispatched)?.Message != dispatched.Message)
        {
            log.LogWarning("{BatchJob} cannot be dispatched to {Backend}: {Message}", job.Metadata.Name, job.Spec.Backend.Name, progress.Message);
            await RecordAsync(batchJob, "Warning", progress.Reason, progress.Message, cancellation).ConfigureAwait(false);
        }

        // Admitted after waiting (one admitted at once has its Dispatched event already).
        if (next.Queue is { Allowance: > 0 } admitted && previous.Queue is not { Allowance: > 0 } && previous.Find(Conditions.Admitted) is { Status: "False" })
        {
            await RecordAsync(batchJob, "Normal", Conditions.Reasons.Admitted, $"admitted to queue {admitted.Name}: {admitted.Allowance} of {admitted.Wanted} indexes at once", cancellation).ConfigureAwait(false);
        }

        var admission = next.Find(Conditions.Admitted);
        if (admission is { Status: "False" } && previous.Find(Conditions.Admitted) is var before && (before is null || before.Reason != admission.Reason)
            && admission.Reason is WaitReasons.QueueNotFound or WaitReasons.PriorityClassNotFound or WaitReasons.NamespaceNotAllowed or WaitReasons.NoBackendAvailable)
        {
            // Waiting on its own spec (or a queue not there yet): said once, as a warning.
            await RecordAsync(batchJob, "Warning", admission.Reason, admission.Message, cancellation).ConfigureAwait(false);
        }

        var applied = next.Find(Conditions.SpecApplied);
        if (applied is { Status: "False" } && (previous.Find(Conditions.SpecApplied) is not { Status: "False" } shown || shown.Message != applied.Message))
        {
            await RecordAsync(batchJob, "Warning", applied.Reason, applied.Message, cancellation).ConfigureAwait(false);
        }
    }

    private static string? AllowSubmitMessage(BackendRun run) => run.AllowSubmit ? null
        : $"the spec changed after dispatch in fields that decide results; run {run.RunId} follows what it already submitted and submits nothing more. Delete and re-create the BatchJob to run the new spec";

    private async Task<ReconcileResult> CancelAsync(
        BatchJobObject batchJob, IBatchBackend backend, BackendRun run, BatchJobStatus previous, BatchJobStatus status, string key, CancellationToken cancellation)
    {
        if (previous.IsTerminal)
        {
            return ReconcileResult.Done;
        }

        var reason = $"cancelled with the annotation {BatchJobResource.CancelAnnotation}";
        BackendProgress stopped;
        if (status.Backends is { } split && status.Rerun is not { Number: > 0 })
        {
            // Every backend the run touched stops its part.
            (stopped, var shares) = await CancelPartsAsync(key, backend, run, split, reason, cancellation).ConfigureAwait(false);
            status = status with { Backends = shares };
        }
        else
        {
            stopped = await backend.CancelAsync(run, reason, cancellation).ConfigureAwait(false);
        }

        if (!stopped.Dispatched)
        {
            await RecordAsync(batchJob, "Warning", stopped.Reason, $"could not stop its {backend.Backend.Name} work: {stopped.Message}", cancellation).ConfigureAwait(false);
        }

        var generation = status.ObservedGeneration ?? 0;
        var now = time.GetUtcNow();
        var cancelled = WithProgress(status, stopped with { Reason = "" }, run.Name, run.RunId, generation, now) with
        {
            Phase = RunPhase.Cancelled,
            Active = 0,
            CompletionTime = stopped.CompletionTime ?? now,
        };
        cancelled = cancelled with
        {
            Conditions = Conditions.With(cancelled.Conditions, Conditions.Failed, true, Conditions.Reasons.Cancelled,
                $"cancelled with the annotation {BatchJobResource.CancelAnnotation}", generation, now),
        };
        await PublishAsync(batchJob, previous, cancelled, cancellation).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private static bool HoldsFinalizer(BatchJobObject batchJob) => batchJob.Metadata.Finalizers?.Contains(BatchJobResource.Finalizer) == true;

    /// <summary>Whether the run's backend, one a part of it went to, or its overflow leaves work behind that deletion must stop.</summary>
    private bool NeedsFinalizer(IBatchBackend backend, IReadOnlyList<BackendShare>? parts, Backend? overflow)
    {
        bool Collected(Backend named) => backends.TryResolve(named, out var other, out _) && other.CollectedWithOwner;
        return !backend.CollectedWithOwner
            || overflow is { } to && !Collected(to)
            || parts?.Skip(1).Any(p => !Backend.TryParse(p.Name, out var named) || !Collected(named)) == true;
    }

    private async Task<ReconcileResult> FinalizeAsync(BatchJobObject batchJob, CancellationToken cancellation)
    {
        if (!HoldsFinalizer(batchJob))
        {
            return ReconcileResult.Done;
        }

        var (ns, name) = (batchJob.Metadata.NamespaceProperty, batchJob.Metadata.Name);
        compaction?.Forget(ObjectKey.Of(batchJob));
        var status = BatchJobStatus.FromJson(batchJob.Status);
        var parsed = _specs.Of(batchJob);
        var named = parsed.Job?.Spec.Backend ?? (status.LegacyAwsBatch is not null ? Backend.AwsBatch : (Backend?)null);
        var reason = $"BatchJob {ns}/{name} was deleted";
        if (named is { } which && backends.TryResolve(which, out var backend, out _))
        {
            var runId = status.RunId ?? (parsed.Job is { } job ? RunIdentity.For(job) : "");
            var run = RunOf(batchJob, parsed.Job, batchJob.Metadata.Generation ?? 0, runId, status.BackendState ?? status.LegacyAwsBatch, status.Phase);
            var released = status.Backends is { } split
                ? await ReleasePartsAsync(backend, run, split, reason, cancellation).ConfigureAwait(false)
                : await backend.ReleaseAsync(run, reason, cancellation).ConfigureAwait(false);
            if (released.Problem is { } problem)
            {
                // The backend refused for good (say, a permission): the deletion goes on, and says what may still run.
                log.LogWarning("{BatchJob}: could not stop its {Backend} work: {Message}", name, which.Name, problem.Message);
                await RecordAsync(batchJob, "Warning", problem.Reason, $"could not stop its {which.Name} work: {problem.Message}", cancellation).ConfigureAwait(false);
            }

            if (!released.Released)
            {
                return ReconcileResult.After(WhileDeleting);
            }
        }

        // Not cancellable: a finalizer half-removed would leave the BatchJob stuck in deletion.
        await cluster.SetFinalizersAsync(batchJob, batchJob.Metadata.Finalizers.Where(f => f != BatchJobResource.Finalizer).ToList(), CancellationToken.None).ConfigureAwait(false);
        log.LogInformation("Released {BatchJob}: its backend work is gone", name);
        return ReconcileResult.Done;
    }

    private static BackendRun RunOf(BatchJobObject batchJob, BatchJob? job, long generation, string runId, JsonElement? state, RunPhase? phase) =>
        new(job, batchJob.Metadata.NamespaceProperty, batchJob.Metadata.Name, batchJob.Metadata.Uid, generation, runId, IndexSelection.All, state, AllowSubmit: false, phase);

    /// <summary>
    /// Hands a finished run (Succeeded or Failed, dispatched, with a results store) to the compaction worker and
    /// writes where it stands into the <c>ResultsCompacted</c> condition; once that says True for the run, nothing
    /// more is asked. Cancelled runs are left raw (<c>batchrunner compact</c> does them by hand).
    /// </summary>
    private async Task<BatchJobStatus> WithCompactionAsync(BatchJobObject batchJob, string key, IBatchBackend backend, BatchJob job, BatchJobStatus status, CancellationToken cancellation)
    {
        if (compaction is null || status.Phase is not (RunPhase.Succeeded or RunPhase.Failed) || status.RunId is not { } runId || status.JobName is null
            || backend.ResultsStoreOf(job, resultsStore) is not { } store)
        {
            return status;
        }

        var shown = status.Find(Conditions.ResultsCompacted);
        if (shown is { Status: "True" } && shown.Message.StartsWith($"run {runId}:", StringComparison.Ordinal))
        {
            compaction.Forget(key);
            return status;
        }

        var progress = compaction.Request(key, new CompactionTarget(store, job.Metadata.Name, runId, status.Rerun?.Number ?? 0), status.Phase == RunPhase.Failed ? status.CompletionTime ?? time.GetUtcNow() : null);
        var (compacted, reason) = progress.Phase switch
        {
            CompactionPhase.Compacted => (true, Conditions.Reasons.Compacted),
            CompactionPhase.NothingToCompact => (false, Conditions.Reasons.NothingToCompact),
            CompactionPhase.Retrying => (false, Conditions.Reasons.CompactionFailed),
            _ => (false, Conditions.Reasons.Compacting),
        };
        if (shown?.Reason != reason && reason != Conditions.Reasons.Compacting)
        {
            await RecordAsync(batchJob, compacted ? "Normal" : "Warning", reason, progress.Message, cancellation).ConfigureAwait(false);
        }

        return status with
        {
            Conditions = Conditions.With(status.Conditions, Conditions.ResultsCompacted, compacted, reason, progress.Message, status.ObservedGeneration ?? 0, time.GetUtcNow()),
        };
    }

    /// <summary>Patches the status when it changed, with an Event for each phase transition and each new rejection.</summary>
    private async Task PublishAsync(BatchJobObject batchJob, BatchJobStatus previous, BatchJobStatus status, CancellationToken cancellation)
    {
        if (JsonSerializer.Serialize(previous, BatchJobStatus.TypeInfo) == JsonSerializer.Serialize(status, BatchJobStatus.TypeInfo))
        {
            return;
        }

        await cluster.PatchStatusAsync(batchJob, status, cancellation).ConfigureAwait(false);
        var validity = status.Find(Conditions.Valid);
        if (validity is { Status: "False" } && previous.Find(Conditions.Valid)?.Message != validity.Message)
        {
            log.LogWarning("{BatchJob} is invalid: {Errors}", batchJob.Metadata.Name, validity.Message);
            await RecordAsync(batchJob, "Warning", validity.Reason, validity.Message, cancellation).ConfigureAwait(false);
        }
        else if (status.Phase != previous.Phase && status.Phase is { } phase)
        {
            var failure = status.Find(Conditions.Failed);
            var message = phase switch
            {
                RunPhase.Succeeded => $"all {status.Total} indexes succeeded",
                RunPhase.Failed => failure?.Message ?? status.Find(Conditions.Dispatched)?.Message ?? "failed",
                RunPhase.Cancelled => "cancelled; its Job was deleted",
                RunPhase.Running => $"{status.Active} of {status.Total} indexes running",
                _ => $"phase {phase}",
            };
            log.LogInformation("{BatchJob} is {Phase}: {Message}", batchJob.Metadata.Name, phase.ToString(), message);

            // An outcome is an Event; Pending and Running are states the status shows, and what made them (Dispatched,
            // Admitted, RerunTaken) has its own Event: one call fewer per BatchJob on the API server.
            if (phase is not (RunPhase.Pending or RunPhase.Running))
            {
                await RecordAsync(batchJob, phase is RunPhase.Failed ? "Warning" : "Normal", phase.ToString(), message, cancellation).ConfigureAwait(false);
            }
        }
    }

    private async Task RecordAsync(BatchJobObject batchJob, string type, string reason, string message, CancellationToken cancellation)
    {
        try
        {
            await cluster.RecordEventAsync(batchJob, type, reason, message, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning(e, "Could not record event {Reason} on {BatchJob}", reason, batchJob.Metadata.Name);
        }
    }

    internal static bool IsCancelRequested(BatchJobObject batchJob) =>
        batchJob.Metadata.Annotations is { } annotations && annotations.TryGetValue(BatchJobResource.CancelAnnotation, out var value) && value == "true";
}
