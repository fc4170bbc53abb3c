using System.Globalization;
using System.Text.Json;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Compaction;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using k8s.Models;
using Serilog;
using Serilog.Context;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>What a reconcile asks of the queue: nothing, or another look after a while.</summary>
public readonly record struct ReconcileResult(TimeSpan? RequeueAfter)
{
    public static readonly ReconcileResult Done = new(null);

    public static ReconcileResult After(TimeSpan delay) => new(delay);
}

/// <summary>
/// Brings one BatchJob's world in line with its spec, level-based and idempotent: every call reads what exists
/// and does only what is missing, so running it twice, or after the controller died at any point, never creates
/// a second Job. Its status is derived from the Job each time. An exception means "retry with backoff".
/// </summary>
/// BatchJobs of another backend are dispatched through its <see cref="IExternalBackend"/>, when the host has one.
/// A finished run with a results store is handed to the <see cref="CompactionWorker"/>, when the host has one.
public sealed class BatchJobReconciler(
    IClusterApi cluster, DispatchSettings settings, TimeProvider time, ILogger log, IEnumerable<IExternalBackend>? externals = null, CompactionWorker? compaction = null)
{
    private static readonly TimeSpan WhileRunning = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan WhileDeleting = TimeSpan.FromSeconds(1);

    private readonly Dictionary<Backend, IExternalBackend> _externals = (externals ?? []).ToDictionary(e => e.Backend);

    public async Task<ReconcileResult> ReconcileAsync(string key, CancellationToken cancellation)
    {
        // 1. Get the BatchJob; gone means there is nothing left to do.
        var batchJob = cluster.GetBatchJob(key);
        if (batchJob is null)
        {
            return ReconcileResult.Done;
        }

        using var scope = LogContext.PushProperty("BatchJob", key);
        using var generationScope = LogContext.PushProperty("Generation", batchJob.Metadata.Generation);
        var (ns, name) = (batchJob.Metadata.NamespaceProperty, batchJob.Metadata.Name);

        // 2. Being deleted: stop the backend work, then let go.
        if (batchJob.Metadata.DeletionTimestamp is not null)
        {
            return await FinalizeAsync(batchJob, cancellation).ConfigureAwait(false);
        }

        // 3. Hold a finalizer while backend work may exist.
        if (batchJob.Metadata.Finalizers?.Contains(BatchJobResource.Finalizer) != true)
        {
            batchJob = await cluster.SetFinalizersAsync(batchJob, [.. batchJob.Metadata.Finalizers ?? [], BatchJobResource.Finalizer], cancellation).ConfigureAwait(false);
        }

        var generation = batchJob.Metadata.Generation ?? 0;
        var previous = BatchJobStatus.FromJson(batchJob.Status);
        var now = time.GetUtcNow();

        // 4. Validate with the same parser as every other door; an invalid spec is a condition, not an error to retry.
        var parsed = BatchJobParser.FromNode(batchJob.ToDocument());
        if (!parsed.IsValid)
        {
            var message = string.Join("; ", parsed.Errors);
            var invalid = previous with
            {
                Phase = RunPhase.Failed,
                ObservedGeneration = generation,
                Conditions = Conditions.With(previous.Conditions, Conditions.Valid, false, Conditions.Reasons.InvalidSpec, message, generation, now),
            };
            await PublishAsync(batchJob, previous, invalid, cancellation).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        var job = parsed.Job!;
        var status = previous with
        {
            // A Failed phase with no Job ever dispatched (an invalid spec, a plan too large) is no outcome: a fixed spec dispatches.
            Phase = previous.Phase == RunPhase.Failed && previous.JobName is null ? RunPhase.Pending : previous.Phase,
            ObservedGeneration = generation,
            Total = job.Spec.Completions,
            Conditions = Conditions.With(previous.Conditions, Conditions.Valid, true, Conditions.Reasons.SpecValid, "the spec is valid", generation, now),
        };

        // 5. Kubernetes BatchJobs become a Job here; others go to their backend, if this controller has it.
        if (job.Spec.Backend != Backend.Kubernetes && _externals.TryGetValue(job.Spec.Backend, out var external))
        {
            return await ReconcileExternalAsync(external, batchJob, job, previous, status, cancellation).ConfigureAwait(false);
        }

        if (job.Spec.Backend != Backend.Kubernetes)
        {
            status = status with
            {
                Phase = status.Phase ?? RunPhase.Pending,
                Conditions = Conditions.With(status.Conditions, Conditions.Dispatched, false, Conditions.Reasons.BackendNotKubernetes,
                    $"spec.backend is {job.Spec.Backend.Name()}; this controller dispatches backend kubernetes", generation, now),
            };
            await PublishAsync(batchJob, previous, status, cancellation).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        if (!cluster.Capabilities.IndexedJobs)
        {
            status = status with
            {
                Conditions = Conditions.With(status.Conditions, Conditions.Degraded, true, Conditions.Reasons.IndexedJobsUnsupported,
                    $"Kubernetes {cluster.Capabilities.Version} has no Indexed Jobs (1.21+): pods get no completion index, so each one stops with exit 70 before running the workload",
                    generation, now),
            };
        }

        var jobName = BatchJobResource.JobName(name);
        var existing = cluster.GetJob(ns, jobName);

        // 6. A cancelled BatchJob keeps its outcome; its Job goes.
        if (IsCancelRequested(batchJob) || previous.Phase == RunPhase.Cancelled)
        {
            return await CancelAsync(batchJob, previous, status, existing, cancellation).ConfigureAwait(false);
        }

        // 7. Find or create the Job under its deterministic name.
        var runId = previous.RunId ?? RunIdentity.For(job);
        if (existing is null && !status.IsTerminal)
        {
            var dispatched = await DispatchAsync(batchJob, job, status, cancellation).ConfigureAwait(false);
            if (dispatched.Status is not null)
            {
                await PublishAsync(batchJob, previous, dispatched.Status, cancellation).ConfigureAwait(false);
                return dispatched.Result;
            }

            runId = RunIdentity.For(job);
            status = status with
            {
                RunId = runId,
                JobName = jobName,
                Conditions = Conditions.With(status.Conditions, Conditions.Dispatched, true, Conditions.Reasons.JobCreated,
                    $"Job {jobName} runs {job.Spec.Completions} indexes, {job.Spec.Parallelism} at a time", generation, now),
            };
            await RecordAsync(batchJob, "Normal", "Dispatched", $"Created Job {jobName} with {job.Spec.Completions} indexes, parallelism {job.Spec.Parallelism}", cancellation).ConfigureAwait(false);
        }
        else if (existing is not null)
        {
            if (!IsOwnedBy(existing, batchJob))
            {
                status = status with
                {
                    Phase = RunPhase.Pending,
                    Conditions = Conditions.With(status.Conditions, Conditions.Dispatched, false, Conditions.Reasons.DispatchFailed,
                        $"a Job named {jobName} exists and belongs to something else; BatchRunner will not take it over", generation, now),
                };
                await PublishAsync(batchJob, previous, status, cancellation).ConfigureAwait(false);
                return ReconcileResult.After(WhileRunning);
            }

            // A Job found rather than created (the controller died before it wrote the status) is dispatched all the same.
            if (status.Find(Conditions.Dispatched) is not { Status: "True" })
            {
                status = status with
                {
                    Conditions = Conditions.With(status.Conditions, Conditions.Dispatched, true, Conditions.Reasons.JobCreated,
                        $"Job {jobName} runs {existing.Spec.Completions} indexes, {existing.Spec.Parallelism} at a time", generation, now),
                };
            }

            // 8. The running Job follows what may change (parallelism, deadline); anything else that changed is refused visibly.
            status = await ApplySpecChangesAsync(batchJob, job, existing, runId, status with { RunId = runId, JobName = jobName }, cancellation).ConfigureAwait(false);
        }

        // 9. Status, derived from the Job (and its pods when the Job does not name failed indexes).
        var failedIndexes = await FailedIndexesFromPodsAsync(existing, job, cancellation).ConfigureAwait(false);
        status = StatusDerivation.FromJob(status, existing, job.Spec.Completions, failedIndexes);
        status = WithOutcomeConditions(status, existing, generation, now);

        // 10. A finished run's results are compacted (off this path); a condition says how far that got.
        status = await WithCompactionAsync(batchJob, key, job, status, cancellation).ConfigureAwait(false);
        await PublishAsync(batchJob, previous, status, cancellation).ConfigureAwait(false);

        // 11. Job events wake this BatchJob up; the requeue is a safety net while work runs.
        return status.IsTerminal ? ReconcileResult.Done : ReconcileResult.After(WhileRunning);
    }

    private async Task<ReconcileResult> FinalizeAsync(BatchJobObject batchJob, CancellationToken cancellation)
    {
        if (batchJob.Metadata.Finalizers?.Contains(BatchJobResource.Finalizer) != true)
        {
            return ReconcileResult.Done;
        }

        var (ns, name) = (batchJob.Metadata.NamespaceProperty, batchJob.Metadata.Name);
        compaction?.Forget(ObjectKey.Of(batchJob));
        await CancelExternalAsync(batchJob, $"BatchJob {ns}/{name} was deleted", cancellation).ConfigureAwait(false);
        var jobName = BatchJobResource.JobName(name);
        if (cluster.GetJob(ns, jobName) is { } job && IsOwnedBy(job, batchJob))
        {
            await cluster.DeleteJobAsync(ns, jobName, cancellation).ConfigureAwait(false);
        }

        await cluster.DeleteConfigMapAsync(ns, BatchJobResource.PlanConfigMapName(name), cancellation).ConfigureAwait(false);
        if (await cluster.JobExistsAsync(ns, jobName, cancellation).ConfigureAwait(false) && cluster.GetJob(ns, jobName) is { } left && IsOwnedBy(left, batchJob))
        {
            log.Debug("Waiting for Job {Job} and its pods to go before releasing {BatchJob}", jobName, name);
            return ReconcileResult.After(WhileDeleting);
        }

        // Not cancellable: a finalizer half-removed would leave the BatchJob stuck in deletion.
        await cluster.SetFinalizersAsync(batchJob, batchJob.Metadata.Finalizers.Where(f => f != BatchJobResource.Finalizer).ToList(), CancellationToken.None).ConfigureAwait(false);
        log.Information("Released {BatchJob}: its Job and plan are gone", name);
        return ReconcileResult.Done;
    }

    /// <summary>
    /// Reconciles a BatchJob of an external backend: cancel when asked, else let the backend observe and submit,
    /// and write what it reports. The backend's state lives in the status (checkpointed after each submission), so a
    /// new leader carries on where the last one stopped.
    /// </summary>
    private async Task<ReconcileResult> ReconcileExternalAsync(
        IExternalBackend external, BatchJobObject batchJob, BatchJob job, BatchJobStatus previous, BatchJobStatus status, CancellationToken cancellation)
    {
        var (ns, name) = (job.Metadata.Namespace, job.Metadata.Name);
        var generation = status.ObservedGeneration ?? 0;
        var current = RunIdentity.For(job);
        var runId = previous.RunId ?? current;
        var run = new ExternalRun(job, ns, name, batchJob.Metadata.Uid, generation, runId, status.AwsBatch, AllowSubmit: runId == current);

        // A cancelled BatchJob keeps its outcome; what it submitted is stopped once.
        if (IsCancelRequested(batchJob) || previous.Phase == RunPhase.Cancelled)
        {
            if (previous.Phase == RunPhase.Cancelled || previous.IsTerminal)
            {
                return ReconcileResult.Done;
            }

            var stopped = await external.CancelAsync(run, $"cancelled with the annotation {BatchJobResource.CancelAnnotation}", cancellation).ConfigureAwait(false);
            if (!stopped.Dispatched)
            {
                await RecordAsync(batchJob, "Warning", stopped.Reason, $"could not stop its {job.Spec.Backend.Name()} work: {stopped.Message}", cancellation).ConfigureAwait(false);
            }

            var now = time.GetUtcNow();
            var cancelled = WithExternal(status, stopped, runId, name) with
            {
                Phase = RunPhase.Cancelled,
                Active = 0,
                CompletionTime = stopped.CompletionTime ?? now,
                Conditions = Conditions.With(status.Conditions, Conditions.Failed, true, Conditions.Reasons.Cancelled,
                    $"cancelled with the annotation {BatchJobResource.CancelAnnotation}", generation, now),
            };
            await PublishAsync(batchJob, previous, cancelled, cancellation).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        if (status.IsTerminal)
        {
            status = await WithCompactionAsync(batchJob, ObjectKey.Of(batchJob), job, status, cancellation).ConfigureAwait(false);
            await PublishAsync(batchJob, previous, status, cancellation).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        if (!run.AllowSubmit)
        {
            var message = $"the spec changed after dispatch in fields that decide results; run {runId} follows what it already submitted and submits nothing more. Delete and re-create the BatchJob to run the new spec";
            if (status.Find(Conditions.SpecApplied) is not { Status: "False" } shown || shown.Message != message)
            {
                await RecordAsync(batchJob, "Warning", Conditions.Reasons.ImmutableFieldChanged, message, cancellation).ConfigureAwait(false);
            }

            status = status with { Conditions = Conditions.With(status.Conditions, Conditions.SpecApplied, false, Conditions.Reasons.ImmutableFieldChanged, message, generation, time.GetUtcNow()) };
        }

        var checkpointed = status;
        var progress = await external.AdvanceAsync(run, async (state, token) =>
        {
            // Written before the next submission, so a controller that dies right after one finds it recorded.
            checkpointed = checkpointed with { RunId = runId, JobName = ExternalJobName(name, runId), AwsBatch = state };
            await cluster.PatchStatusAsync(batchJob, checkpointed, token).ConfigureAwait(false);
        }, cancellation).ConfigureAwait(false);

        var at = time.GetUtcNow();
        var next = WithExternal(status, progress, runId, name);
        next = next with
        {
            Conditions = Conditions.With(next.Conditions, Conditions.Dispatched, progress.Dispatched, progress.Reason, progress.Message, generation, at),
        };
        next = progress.Phase switch
        {
            RunPhase.Succeeded => next with
            {
                Conditions = Conditions.With(next.Conditions, Conditions.Complete, true, Conditions.Reasons.AllIndexesSucceeded, $"all {next.Total} indexes succeeded", generation, at),
            },
            RunPhase.Failed => next with
            {
                Conditions = Conditions.With(next.Conditions, Conditions.Failed, true, progress.FailureReason ?? "Failed",
                    next.FailedIndexes is { } failed && progress.FailureMessage?.Contains("failed indexes", StringComparison.Ordinal) != true
                        ? $"{progress.FailureMessage}; failed indexes: {failed}" : progress.FailureMessage ?? "failed", generation, at),
            },
            _ => next,
        };

        var dispatched = next.Find(Conditions.Dispatched);
        if (!progress.Dispatched && dispatched is not null && previous.Find(Conditions.Dispatched)?.Message != dispatched.Message)
        {
            log.Warning("{BatchJob} cannot be dispatched to {Backend}: {Message}", name, job.Spec.Backend.Name(), progress.Message);
            await RecordAsync(batchJob, "Warning", progress.Reason, progress.Message, cancellation).ConfigureAwait(false);
        }

        next = await WithCompactionAsync(batchJob, ObjectKey.Of(batchJob), job, next, cancellation).ConfigureAwait(false);
        await PublishAsync(batchJob, previous, next, cancellation).ConfigureAwait(false);
        return progress.IsTerminal ? ReconcileResult.Done : ReconcileResult.After(progress.PollAfter);
    }

    /// <summary>
    /// Hands a finished run (Succeeded or Failed, dispatched, with a results store) to the compaction worker and
    /// writes where it stands into the <c>ResultsCompacted</c> condition; once that says True for the run, nothing
    /// more is asked. Cancelled runs are left raw (<c>batchrunner compact</c> does them by hand).
    /// </summary>
    private async Task<BatchJobStatus> WithCompactionAsync(BatchJobObject batchJob, string key, BatchJob job, BatchJobStatus status, CancellationToken cancellation)
    {
        if (compaction is null || status.Phase is not (RunPhase.Succeeded or RunPhase.Failed) || status.RunId is not { } runId || status.JobName is null
            || ResultsStoreOf(job) is not { } store)
        {
            return status;
        }

        var shown = status.Find(Conditions.ResultsCompacted);
        if (shown is { Status: "True" } && shown.Message.StartsWith($"run {runId}:", StringComparison.Ordinal))
        {
            compaction.Forget(key);
            return status;
        }

        var progress = compaction.Request(key, new CompactionTarget(store, job.Metadata.Name, runId), status.Phase == RunPhase.Failed ? status.CompletionTime ?? time.GetUtcNow() : null);
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

    /// <summary>
    /// Where a BatchJob's results went: on Kubernetes only when the controller collects results (else pods run the
    /// sh entrypoint and upload nothing); on an external backend, the spec's store or the controller's.
    /// </summary>
    private string? ResultsStoreOf(BatchJob job)
    {
        var own = job.Spec.Results.Uri is { Length: > 0 } uri ? uri : null;
        return job.Spec.Backend == Backend.Kubernetes
            ? settings.Results is { } collection ? own ?? collection.Uri : null
            : own ?? settings.Results?.Uri;
    }

    /// <summary>Stops an external backend's work for a BatchJob being deleted; work it cannot stop for good is reported, not waited for.</summary>
    private async Task CancelExternalAsync(BatchJobObject batchJob, string reason, CancellationToken cancellation)
    {
        var status = BatchJobStatus.FromJson(batchJob.Status);
        var parsed = BatchJobParser.FromNode(batchJob.ToDocument());
        var backend = parsed.Job?.Spec.Backend ?? (status.AwsBatch is not null ? Backend.AwsBatch : Backend.Kubernetes);
        if (!_externals.TryGetValue(backend, out var external) || status.Phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled)
        {
            return;
        }

        var runId = status.RunId ?? (parsed.Job is { } job ? RunIdentity.For(job) : null);
        if (runId is null)
        {
            return;
        }

        var (ns, name) = (batchJob.Metadata.NamespaceProperty, batchJob.Metadata.Name);
        var stopped = await external.CancelAsync(
            new ExternalRun(parsed.Job, ns, name, batchJob.Metadata.Uid, batchJob.Metadata.Generation ?? 0, runId, status.AwsBatch, AllowSubmit: false),
            reason, cancellation).ConfigureAwait(false);
        if (!stopped.Dispatched)
        {
            // The backend refused for good (say, a permission): the deletion goes on, and says what may still run.
            log.Warning("{BatchJob}: could not stop its {Backend} work: {Message}", name, backend.Name(), stopped.Message);
            await RecordAsync(batchJob, "Warning", stopped.Reason, $"could not stop its {backend.Name()} work: {stopped.Message}", cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>The common prefix of the names the external backend gives a run's jobs.</summary>
    private static string ExternalJobName(string name, string runId) => $"{name}-{runId}";

    private static BatchJobStatus WithExternal(BatchJobStatus status, ExternalProgress progress, string runId, string name) => status with
    {
        Phase = progress.Phase,
        RunId = runId,
        // Named only once something may have gone (a run refused before that stays undispatched, so a fixed spec goes).
        JobName = progress.Dispatched || status.JobName is not null ? ExternalJobName(name, runId) : null,
        Total = progress.Total,
        Succeeded = progress.Succeeded,
        Failed = progress.Failed,
        Active = progress.Active,
        FailedIndexes = progress.FailedIndexes,
        StartTime = progress.StartTime ?? status.StartTime,
        CompletionTime = progress.CompletionTime,
        AwsBatch = progress.State,
    };

    private async Task<ReconcileResult> CancelAsync(BatchJobObject batchJob, BatchJobStatus previous, BatchJobStatus status, V1Job? existing, CancellationToken cancellation)
    {
        var (ns, name) = (batchJob.Metadata.NamespaceProperty, batchJob.Metadata.Name);
        if (existing is not null && IsOwnedBy(existing, batchJob) && existing.Status?.Conditions?.Any(c => c.Status == "True" && c.Type is "Complete" or "Failed") != true)
        {
            await cluster.DeleteJobAsync(ns, existing.Metadata.Name, cancellation).ConfigureAwait(false);
        }

        if (previous.IsTerminal)
        {
            return ReconcileResult.Done;
        }

        var generation = status.ObservedGeneration ?? 0;
        var now = time.GetUtcNow();
        var cancelled = StatusDerivation.FromJob(status, existing, status.Total ?? 0, null) with
        {
            Phase = RunPhase.Cancelled,
            Active = 0,
            CompletionTime = now,
            Conditions = Conditions.With(status.Conditions, Conditions.Failed, true, Conditions.Reasons.Cancelled,
                $"cancelled with the annotation {BatchJobResource.CancelAnnotation}", generation, now),
        };
        await PublishAsync(batchJob, previous, cancelled, cancellation).ConfigureAwait(false);
        log.Information("Cancelled {BatchJob}", name);
        return ReconcileResult.Done;
    }

    /// <summary>Creates the plan ConfigMap, then the Job. Returns a status only when dispatch cannot go on.</summary>
    private async Task<(BatchJobStatus? Status, ReconcileResult Result)> DispatchAsync(BatchJobObject batchJob, BatchJob job, BatchJobStatus status, CancellationToken cancellation)
    {
        var (ns, name) = (job.Metadata.Namespace, job.Metadata.Name);
        var generation = status.ObservedGeneration ?? 0;
        var now = time.GetUtcNow();
        var plan = PodEntrypoint.PlanFiles(job);
        var planBytes = PodEntrypoint.SizeOf(plan);
        if (planBytes > PodEntrypoint.MaxPlanBytes)
        {
            var message = $"the sweep plan is {planBytes:N0} bytes, more than a ConfigMap holds ({PodEntrypoint.MaxPlanBytes:N0}); use a grid instead of a long list";
            return (status with
            {
                Phase = RunPhase.Failed,
                Conditions = Conditions.With(status.Conditions, Conditions.Dispatched, false, Conditions.Reasons.PlanTooLarge, message, generation, now),
            }, ReconcileResult.Done);
        }

        var uid = batchJob.Metadata.Uid;
        var runId = RunIdentity.For(job);
        // Create first and look only on a conflict: the common path costs one call, not two.
        var planMap = JobManifests.PlanConfigMap(job, uid, plan);
        if (!await cluster.CreateConfigMapAsync(planMap, cancellation).ConfigureAwait(false))
        {
            var existingPlan = await cluster.GetConfigMapAsync(ns, planMap.Metadata.Name, cancellation).ConfigureAwait(false);
            if (existingPlan is not null && (Value(existingPlan.Metadata.Labels, BatchJobResource.RunLabel) != runId
                || existingPlan.Metadata.OwnerReferences?.Any(o => o.Uid == uid) != true))
            {
                // A plan left from an earlier spec (changed before its Job was created) or an earlier object of this name.
                await cluster.DeleteConfigMapAsync(ns, planMap.Metadata.Name, cancellation).ConfigureAwait(false);
                if (!await cluster.CreateConfigMapAsync(planMap, cancellation).ConfigureAwait(false))
                {
                    return (null, ReconcileResult.After(WhileDeleting));
                }
            }
        }

        var created = await cluster.CreateJobAsync(JobManifests.IndexedJob(job, uid, cluster.Capabilities, settings), cancellation).ConfigureAwait(false);
        log.Information(
            created ? "Created Job {Job} for {BatchJob} run {RunId}: {Completions} indexes, parallelism {Parallelism}" : "Job {Job} of {BatchJob} run {RunId} already exists",
            BatchJobResource.JobName(name), name, runId, job.Spec.Completions, job.Spec.Parallelism);
        return (null, ReconcileResult.Done);
    }

    private async Task<BatchJobStatus> ApplySpecChangesAsync(BatchJobObject batchJob, BatchJob job, V1Job existing, string runId, BatchJobStatus status, CancellationToken cancellation)
    {
        var generation = status.ObservedGeneration ?? 0;
        var now = time.GetUtcNow();
        var refused = new List<string>();
        var dispatchedRun = Value(existing.Metadata.Labels, BatchJobResource.RunLabel);
        if (dispatchedRun is not null && dispatchedRun != RunIdentity.For(job))
        {
            refused.Add(await ChangedResultFieldsAsync(job, cancellation).ConfigureAwait(false));
        }

        var template = existing.Spec.Template.Spec;
        var timeout = job.Spec.TimeoutSeconds is { } t ? (long?)Math.Ceiling(t) : null;
        if (template.ActiveDeadlineSeconds != timeout)
        {
            refused.Add("spec.timeoutSeconds");
        }

        var retries = job.Spec.Retry.Attempts - 1;
        var dispatchedRetries = existing.Spec.BackoffLimitPerIndex ?? (job.Spec.Completions == 0 ? 0 : (existing.Spec.BackoffLimit ?? 0) / Math.Max(1, job.Spec.Completions));
        if (dispatchedRetries != retries)
        {
            refused.Add("spec.retry.attempts");
        }

        var deadline = job.Spec.DeadlineSeconds is { } d ? (long?)Math.Ceiling(d) : null;
        if (refused.Count == 0 && !status.IsTerminal && (existing.Spec.Parallelism != job.Spec.Parallelism || existing.Spec.ActiveDeadlineSeconds != deadline))
        {
            await cluster.PatchJobAsync(job.Metadata.Namespace, existing.Metadata.Name, job.Spec.Parallelism, deadline, cancellation).ConfigureAwait(false);
            log.Information("Applied parallelism {Parallelism} and deadline {Deadline} to running Job {Job}", job.Spec.Parallelism, deadline, existing.Metadata.Name);
        }

        if (refused.Count == 0)
        {
            return status with { Conditions = Conditions.With(status.Conditions, Conditions.SpecApplied, true, Conditions.Reasons.UpToDate, $"Job {existing.Metadata.Name} runs the current spec", generation, now) };
        }

        var message = $"{string.Join(", ", refused)} changed after dispatch and cannot change on a running Job; run {runId} goes on with the spec it started with. Delete and re-create the BatchJob to run the new spec";
        if (status.Find(Conditions.SpecApplied) is not { Status: "False" } shown || shown.Message != message)
        {
            await RecordAsync(batchJob, "Warning", Conditions.Reasons.ImmutableFieldChanged, message, cancellation).ConfigureAwait(false);
        }

        return status with { Conditions = Conditions.With(status.Conditions, Conditions.SpecApplied, false, Conditions.Reasons.ImmutableFieldChanged, message, generation, now) };
    }

    /// <summary>Names the results-defining fields that differ from the dispatched spec kept in the plan ConfigMap.</summary>
    private async Task<string> ChangedResultFieldsAsync(BatchJob job, CancellationToken cancellation)
    {
        var plan = await cluster.GetConfigMapAsync(job.Metadata.Namespace, BatchJobResource.PlanConfigMapName(job.Metadata.Name), cancellation).ConfigureAwait(false);
        if (Value(plan?.Data, PodEntrypoint.SpecKey) is not { } dispatchedJson)
        {
            return "the spec";
        }

        using var dispatched = JsonDocument.Parse(dispatchedJson);
        using var current = JsonDocument.Parse(RunIdentity.SpecJson(job));
        var before = dispatched.RootElement.GetProperty("Spec");
        var after = current.RootElement.GetProperty("Spec");
        var changed = after.EnumerateObject()
            .Select(p => (Field: char.ToLowerInvariant(p.Name[0]) + p.Name[1..], p.Name, p.Value))
            .Where(p => !RunIdentity.ExecutionOnlyFields.Contains(p.Field))
            .Where(p => !before.TryGetProperty(p.Name, out var old) || old.GetRawText() != p.Value.GetRawText())
            .Select(p => "spec." + p.Field)
            .ToList();
        return changed.Count == 0 ? "the spec" : string.Join(", ", changed);
    }

    private async Task<IReadOnlyCollection<int>?> FailedIndexesFromPodsAsync(V1Job? existing, BatchJob job, CancellationToken cancellation)
    {
        if (existing?.Status is not { Failed: > 0 } || existing.Status.FailedIndexes is not null || !cluster.Capabilities.IndexedJobs)
        {
            return null;
        }

        var pods = await cluster.ListPodsAsync(job.Metadata.Namespace, $"{BatchJobResource.BatchJobLabel}={job.Metadata.Name}", cancellation).ConfigureAwait(false);
        var jobFailed = existing.Status.Conditions?.Any(c => c.Type == "Failed" && c.Status == "True") == true;
        return pods
            .Select(p => (Index: Value(p.Metadata.Annotations, "batch.kubernetes.io/job-completion-index"), Phase: p.Status?.Phase))
            .Where(p => p.Index is not null)
            .GroupBy(p => int.Parse(p.Index!, CultureInfo.InvariantCulture))
            .Where(g => g.All(p => p.Phase != "Succeeded") && (jobFailed || g.Count(p => p.Phase == "Failed") >= job.Spec.Retry.Attempts))
            .Select(g => g.Key)
            .ToList();
    }

    private static BatchJobStatus WithOutcomeConditions(BatchJobStatus status, V1Job? job, long generation, DateTimeOffset now) => status.Phase switch
    {
        RunPhase.Succeeded => status with
        {
            Conditions = Conditions.With(status.Conditions, Conditions.Complete, true, Conditions.Reasons.AllIndexesSucceeded,
                $"all {status.Total} indexes succeeded", generation, now),
        },
        RunPhase.Failed when StatusDerivation.FailureOf(job) is { } failure => status with
        {
            Conditions = Conditions.With(status.Conditions, Conditions.Failed, true, failure.Reason,
                status.FailedIndexes is { } failed ? $"{failure.Message}; failed indexes: {failed}" : failure.Message, generation, now),
        },
        _ => status,
    };

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
            log.Warning("{BatchJob} is invalid: {Errors}", batchJob.Metadata.Name, validity.Message);
            await RecordAsync(batchJob, "Warning", Conditions.Reasons.InvalidSpec, validity.Message, cancellation).ConfigureAwait(false);
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
            log.Information("{BatchJob} is {Phase}: {Message}", batchJob.Metadata.Name, phase.ToString(), message);
            await RecordAsync(batchJob, phase is RunPhase.Failed ? "Warning" : "Normal", phase.ToString(), message, cancellation).ConfigureAwait(false);
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
            log.Warning(e, "Could not record event {Reason} on {BatchJob}", reason, batchJob.Metadata.Name);
        }
    }

    private static string? Value(IDictionary<string, string>? map, string key) =>
        map is not null && map.TryGetValue(key, out var value) ? value : null;

    private static bool IsCancelRequested(BatchJobObject batchJob) =>
        Value(batchJob.Metadata.Annotations, BatchJobResource.CancelAnnotation) is "true";

    private static bool IsOwnedBy(V1Job job, BatchJobObject batchJob) =>
        job.Metadata.OwnerReferences?.Any(o => o.Uid == batchJob.Metadata.Uid && o.Controller == true) == true;

    }
