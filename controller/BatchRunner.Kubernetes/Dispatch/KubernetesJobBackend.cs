using System.Globalization;
using System.Text.Json;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Status;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Dispatch;

/// <summary>
/// Kubernetes as a backend: a BatchJob's run is one Indexed Job (with the plan its pods read, or beside it in a
/// ConfigMap when large), named after the BatchJob and owned by it. Nothing is remembered between reconciles: where the run stands is derived from
/// the Job (and its pods when the Job does not name its failed indexes) every time, so this backend keeps no state.
/// </summary>
public sealed class KubernetesJobBackend(IClusterApi cluster, DispatchSettings settings, ILogger<KubernetesJobBackend> log, TimeProvider? time = null) : IBatchBackend
{
    /// <summary>
    /// How long a new Job the Job controller has not counted yet (no start time) is left to report back by itself: its
    /// first count comes through the Job informer, and one status write then says both dispatched and running.
    /// </summary>
    private static readonly TimeSpan FirstCountWindow = TimeSpan.FromSeconds(5);

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>Job events wake the BatchJob up; this look is a safety net while work runs.</summary>
    private static readonly TimeSpan WhileRunning = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan WhilePlanGoes = TimeSpan.FromSeconds(1);

    /// <summary>Index runtimes are read from the run's pods at most this often, and only when more indexes succeeded.</summary>
    private static readonly TimeSpan RuntimeSampleInterval = TimeSpan.FromSeconds(30);

    private readonly UsageTally _usage = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (int Succeeded, long At)> _sampled = new(StringComparer.Ordinal);

    public Backend Backend => Backend.Kubernetes;

    public BackendCapacity Capacity => _usage.Capacity;

    /// <summary>Its Jobs (and plan ConfigMap) are owned by the BatchJob: the garbage collector removes them with it.</summary>
    public bool CollectedWithOwner => true;

    public void Forget(string ns, string name)
    {
        _usage.Forget(ns, name);
        foreach (var key in _sampled.Keys.Where(k => k.StartsWith($"{ns}/{name}/", StringComparison.Ordinal)))
        {
            _sampled.TryRemove(key, out _);
        }
    }

    private static string SampleKey(BackendRun run) => $"{run.Namespace}/{run.Name}/{run.Uid}";

    /// <summary>Pods upload results only when the controller collects them (else they run the sh entrypoint).</summary>
    public string? ResultsStoreOf(BatchJob job, string? hostStore) =>
        settings.Results is { } collection ? job.Spec.Results.Uri is { Length: > 0 } own ? own : collection.Uri : null;

    public async Task<BackendProgress> AdvanceAsync(BackendRun run, BackendCheckpoint checkpoint, CancellationToken cancellation)
    {
        var job = run.Job ?? throw new ArgumentException("a run to advance needs its BatchJob", nameof(run));
        var (ns, name) = (run.Namespace, run.Name);
        var degraded = cluster.Capabilities.IndexedJobs ? null : new BackendCondition(true, Conditions.Reasons.IndexedJobsUnsupported,
            $"Kubernetes {cluster.Capabilities.Version} has no Indexed Jobs (1.21+): pods get no completion index, so each one stops with exit 70 before running the workload");
        if (!run.Indexes.IsAll && run.Rerun > 0)
        {
            return await AdvanceRerunAsync(run, job, checkpoint, cancellation).ConfigureAwait(false) with { Degraded = degraded };
        }

        // A part of a split run: the run's Job holds only its indexes (completion i runs the i-th of them), and the
        // counts are the part's.
        var part = run.Indexes.IsAll ? null : IndexRanges.Parse(run.Indexes.Ranges);
        var total = part?.Count ?? job.Spec.Completions;

        var jobName = BatchJobResource.JobName(name);
        var existing = cluster.GetJob(ns, jobName);
        var events = new List<BackendEvent>();

        // 1. Create the plan, then the Job, under their deterministic names, once its queue lets an index start. The
        //    Job runs at most the allowance at once. A Job whose parallelism drops below its active pods deletes the
        //    surplus, those not running first: a lower allowance is applied down to the pods already running, so
        //    only pods that have not started yet go (their indexes wait), and no running index is killed for it.
        var parallelism = run.ParallelismNow(job);
        if (existing is null)
        {
            if (!run.AllowSubmit)
            {
                return Waiting(job, dispatched: false, Conditions.Reasons.ImmutableFieldChanged, "nothing is dispatched for a run whose spec changed", WhileRunning) with { Degraded = degraded };
            }

            if (parallelism == 0)
            {
                return Waiting(job, dispatched: false, BackendReasons.Queued, "waiting in its queue for room: no Job until an index may start", WhileRunning) with { Degraded = degraded };
            }

            job = WithParallelism(job, parallelism);

            var refusal = await DispatchAsync(run, job, cancellation, part is null ? null : (0, run.Indexes.Ranges!)).ConfigureAwait(false);
            if (refusal is not null)
            {
                return refusal with { Degraded = degraded };
            }

            events.Add(new BackendEvent("Normal", "Dispatched", part is null
                ? $"Created Job {jobName} with {total} indexes, parallelism {job.Spec.Parallelism}"
                : $"Created Job {jobName} with {total} of the run's indexes ({run.Indexes.Ranges}), parallelism {job.Spec.Parallelism}"));
        }
        else if (!IsOwnedBy(existing, run.Uid))
        {
            return Waiting(job, dispatched: false, Conditions.Reasons.DispatchFailed,
                $"a Job named {jobName} exists and belongs to something else; BatchRunner will not take it over", WhileRunning) with { Degraded = degraded };
        }

        else if (parallelism < job.Spec.Parallelism)
        {
            var floor = parallelism < (existing.Spec.Parallelism ?? 0) && (existing.Status?.Active ?? 0) > parallelism
                ? await RunningPodsAsync(run, cancellation).ConfigureAwait(false)
                : 0;
            job = WithParallelism(job, Math.Min(job.Spec.Parallelism, Math.Max(parallelism, floor)));
        }

        // 2. The running Job follows what may change (parallelism, deadline); anything else that changed is refused visibly.
        //    A Job this call created runs the current spec by construction: saying so now spares a status write later.
        var applied = existing is null
            ? new BackendCondition(true, Conditions.Reasons.UpToDate, $"Job {jobName} runs the current spec")
            : await ApplySpecChangesAsync(job, existing, run.RunId, cancellation).ConfigureAwait(false);

        // 3. Where it stands, derived from the Job (and its pods when the Job does not name failed indexes).
        var failedIndexes = await FailedIndexesFromPodsAsync(existing, job, cancellation).ConfigureAwait(false);
        var derived = StatusDerivation.FromJob(new BatchJobStatus(), existing, total, failedIndexes);
        if (part is not null && derived.FailedIndexes is { } positions)
        {
            derived = derived with { FailedIndexes = IndexRanges.Format(IndexRanges.Parse(positions).Where(p => p < part.Count).Select(p => part[p])) };
        }

        var failure = derived.Phase == RunPhase.Failed ? StatusDerivation.FailureOf(existing) : null;
        var runtimes = await RuntimesAsync(run, existing, cancellation).ConfigureAwait(false);
        var completions = existing?.Spec.Completions ?? total;
        var (reason, message) = existing?.Spec.Suspend == true && existing.Metadata.Labels?.TryGetValue(JobManifests.KueueQueueLabel, out var localQueue) == true
            ? ("WaitingForKueue", $"Job {jobName} is suspended until Kueue LocalQueue {localQueue} admits it")
            : (Conditions.Reasons.JobCreated, $"Job {jobName} runs {completions} indexes, {job.Spec.Parallelism} at a time");
        // 4. A Job created now, or one so new the Job controller has not counted it, comes back through the Job
        //    informer in a moment with its first count; till then (a few seconds at most) nothing needs writing.
        var uncounted = UntilCounted(existing);
        var progress = FromDerived(derived, job, Dispatched: true, reason, message,
            failure?.Reason, failure?.Message) with
        {
            JobName = jobName,
            RunId = Value(existing?.Metadata.Labels, BatchJobResource.RunLabel),
            ReportsBack = uncounted is not null,
            PollAfter = uncounted ?? WhileRunning,
            SpecApplied = applied,
            Degraded = degraded,
            Events = events,
            Runtimes = runtimes,
        };
        _usage.Observe(run, progress);
        return progress;
    }

    /// <summary>What is left of <see cref="FirstCountWindow"/> for a Job not counted yet; null once it was counted, or waited for long enough.</summary>
    private TimeSpan? UntilCounted(V1Job? existing)
    {
        if (existing is null)
        {
            return FirstCountWindow;
        }

        if (existing.Status?.StartTime is not null || existing.Spec.Suspend == true || existing.Metadata.CreationTimestamp is not { } created)
        {
            return null;
        }

        var left = FirstCountWindow - (_time.GetUtcNow().UtcDateTime - DateTime.SpecifyKind(created, DateTimeKind.Utc));
        return left > TimeSpan.Zero ? left : null;
    }

    /// <summary>
    /// A rerun of a finished run: a Job of its own (<see cref="JobManifests.RerunJobName"/>) with one completion per
    /// chosen index, mapped through <c>BATCHRUNNER_INDEXES</c>. What the run came to before (the host's record when the
    /// rerun was taken, less the chosen indexes) is kept in the backend's state, so the whole run's counts are derived
    /// from it and the rerun's Job, even after the first Job's TTL removed it.
    /// </summary>
    private async Task<BackendProgress> AdvanceRerunAsync(BackendRun run, BatchJob job, BackendCheckpoint checkpoint, CancellationToken cancellation)
    {
        var chosen = IndexRanges.Parse(run.Indexes.Ranges);
        var state = RerunState.FromJson(run.State);
        if (state?.Number != run.Rerun)
        {
            // 1. Taken once: what stays of the earlier outcome (the host's record, the chosen indexes already taken out)
            //    is recorded before anything is created.
            var recorded = run.Recorded ?? new BackendTally(0, 0, null);
            var stays = IndexRanges.Parse(recorded.FailedIndexes).Except(chosen).ToList();
            state = new RerunState
            {
                Number = run.Rerun,
                Indexes = run.Indexes.Ranges!,
                SucceededBefore = recorded.Succeeded,
                FailedBefore = stays.Count == 0 ? null : IndexRanges.Format(stays),
            };
            await checkpoint(state.ToJson(), cancellation).ConfigureAwait(false);
        }

        var jobName = JobManifests.RerunJobName(run.Name, state.Number);
        var existing = cluster.GetJob(run.Namespace, jobName);
        var events = new List<BackendEvent>();
        var parallelism = run.ParallelismNow(job);

        // 2. Its Job, once its queue lets an index start (with the run's plan, as the run's own Job has it).
        if (existing is null)
        {
            if (!run.AllowSubmit || parallelism == 0)
            {
                // The run stands where the rerun left it: what stayed of it, and the chosen indexes waiting.
                var stayed = IndexRanges.Parse(state.FailedBefore);
                return Waiting(job, dispatched: false, run.AllowSubmit ? BackendReasons.Queued : Conditions.Reasons.ImmutableFieldChanged,
                    run.AllowSubmit ? "waiting in its queue for room: no rerun Job until an index may start" : "nothing is dispatched for a run whose spec changed", WhileRunning)
                    with { Phase = RunPhase.Running, Succeeded = state.SucceededBefore, Failed = stayed.Count, FailedIndexes = state.FailedBefore, State = state.ToJson(), Reruns = state.Number };
            }

            if (state.Indexes.Length > MaxRerunIndexesText)
            {
                return Waiting(job, dispatched: false, Conditions.Reasons.DispatchFailed,
                    $"the rerun's indexes take {state.Indexes.Length:N0} characters as ranges, more than a pod's environment should carry ({MaxRerunIndexesText:N0}); rerun them in parts", TimeSpan.Zero)
                    with { Phase = RunPhase.Failed, State = state.ToJson(), RefusedForInput = true };
            }

            if (await DispatchAsync(run, WithParallelism(job, parallelism), cancellation, (state.Number, state.Indexes)).ConfigureAwait(false) is { } refusal)
            {
                return refusal with { State = state.ToJson() };
            }

            events.Add(new BackendEvent("Normal", "Dispatched", $"Created Job {jobName} to rerun {chosen.Count} indexes ({state.Indexes}), parallelism {parallelism}"));
        }
        else if (!IsOwnedBy(existing, run.Uid))
        {
            return Waiting(job, dispatched: false, Conditions.Reasons.DispatchFailed,
                $"a Job named {jobName} exists and belongs to something else; BatchRunner will not take it over", WhileRunning) with { State = state.ToJson() };
        }
        else if (parallelism > (existing.Spec.Parallelism ?? 0) && existing.Status?.Conditions?.Any(c => c.Status == "True" && c.Type is "Complete" or "Failed") != true)
        {
            // Its queue admitted more since the Job was created (a lower allowance only holds back what has not started).
            await cluster.PatchJobAsync(run.Namespace, jobName, parallelism, existing.Spec.ActiveDeadlineSeconds, cancellation).ConfigureAwait(false);
        }

        // 3. The whole run: the earlier outcome of the indexes not chosen, and the rerun Job's of those chosen.
        var failedPositions = await FailedIndexesFromPodsAsync(existing, job, cancellation, jobName).ConfigureAwait(false);
        var derived = StatusDerivation.FromJob(new BatchJobStatus(), existing, chosen.Count, failedPositions);
        var failedBefore = IndexRanges.Parse(state.FailedBefore);
        var failed = failedBefore.Concat(IndexRanges.Parse(derived.FailedIndexes).Where(p => p < chosen.Count).Select(p => chosen[p])).ToList();
        // Without per-index failures (before 1.29, no pods to read) the Job's own count is what is known.
        var failedCount = derived.FailedIndexes is null ? failedBefore.Count + (derived.Failed ?? 0) : failed.Count;
        var phase = derived.Phase switch
        {
            RunPhase.Succeeded or RunPhase.Failed => failedCount > 0 || derived.Phase == RunPhase.Failed ? RunPhase.Failed : RunPhase.Succeeded,
            _ => RunPhase.Running,
        };
        var failure = phase != RunPhase.Failed ? ((string Reason, string Message)?)null
            : StatusDerivation.FailureOf(existing) ?? ("IndexesFailed", $"{failedCount} of {job.Spec.Completions} indexes failed");
        var progress = new BackendProgress(
            phase, job.Spec.Completions, state.SucceededBefore + (derived.Succeeded ?? 0), failedCount, derived.Active ?? 0,
            failed.Count == 0 ? null : IndexRanges.Format(failed), derived.StartTime, phase is RunPhase.Succeeded or RunPhase.Failed ? derived.CompletionTime : null,
            Dispatched: true, Conditions.Reasons.JobCreated, $"Job {jobName} reruns {chosen.Count} indexes ({state.Indexes}), {parallelism} at a time",
            failure?.Reason, failure?.Message, state.ToJson(), WhileRunning)
        {
            JobName = jobName,
            Events = events,
            Reruns = state.Number,
        };
        _usage.Observe(run, progress);
        return progress;
    }

    /// <summary>
    /// The Job of the run's latest rerun, when it has one of this BatchJob's: found from the backend's state, which the
    /// host hands back on every call (a cancel or a delete comes before the host looks at the rerun request).
    /// </summary>
    private V1Job? RerunJobOf(BackendRun run) =>
        RerunState.FromJson(run.State) is { } rerun && cluster.GetJob(run.Namespace, JobManifests.RerunJobName(run.Name, rerun.Number)) is { } job && IsOwnedBy(job, run.Uid)
            ? job : null;

    /// <summary>The longest range text of a rerun's indexes a pod's environment carries.</summary>
    public const int MaxRerunIndexesText = 256 * 1024;

    public async Task<BackendProgress> CancelAsync(BackendRun run, string reason, CancellationToken cancellation)
    {
        var (ns, name) = (run.Namespace, run.Name);
        if (RerunJobOf(run) is { } rerunJob && rerunJob.Status?.Conditions?.Any(c => c.Status == "True" && c.Type is "Complete" or "Failed") != true)
        {
            await cluster.DeleteJobAsync(ns, rerunJob.Metadata.Name, cancellation).ConfigureAwait(false);
        }

        var existing = cluster.GetJob(ns, BatchJobResource.JobName(name));
        if (existing is not null && IsOwnedBy(existing, run.Uid) && existing.Status?.Conditions?.Any(c => c.Status == "True" && c.Type is "Complete" or "Failed") != true)
        {
            await cluster.DeleteJobAsync(ns, existing.Metadata.Name, cancellation).ConfigureAwait(false);
        }

        _usage.Forget(run);
        var total = run.Job?.Spec.Completions ?? existing?.Spec.Completions ?? 0;
        var derived = StatusDerivation.FromJob(new BatchJobStatus(), existing, total, null);
        log.LogInformation("Cancelled {BatchJob}", name);
        return FromDerived(derived, run.Job, Dispatched: true, "", "", null, null) with
        {
            Phase = RunPhase.Cancelled,
            JobName = existing is null ? null : existing.Metadata.Name,
            CompletionTime = null,
        };
    }

    public async Task<BackendRelease> ReleaseAsync(BackendRun run, string reason, CancellationToken cancellation)
    {
        var (ns, name) = (run.Namespace, run.Name);
        _usage.Forget(run);
        _sampled.TryRemove(SampleKey(run), out _);
        var jobName = BatchJobResource.JobName(name);
        if (cluster.GetJob(ns, jobName) is { } job && IsOwnedBy(job, run.Uid))
        {
            await cluster.DeleteJobAsync(ns, jobName, cancellation).ConfigureAwait(false);
        }

        // Reruns' Jobs go with the BatchJob's owner reference; the one that may still run is stopped now.
        if (RerunJobOf(run) is { } rerunJob)
        {
            await cluster.DeleteJobAsync(ns, rerunJob.Metadata.Name, cancellation).ConfigureAwait(false);
        }

        await cluster.DeleteConfigMapAsync(ns, BatchJobResource.PlanConfigMapName(name), cancellation).ConfigureAwait(false);
        if (await cluster.JobExistsAsync(ns, jobName, cancellation).ConfigureAwait(false) && cluster.GetJob(ns, jobName) is { } left && IsOwnedBy(left, run.Uid))
        {
            log.LogDebug("Waiting for Job {Job} and its pods to go before releasing {BatchJob}", jobName, name);
            return BackendRelease.NotYet;
        }

        return BackendRelease.Done;
    }

    /// <summary>Creates the plan ConfigMap (a large plan), then the Job. Returns progress only when dispatch cannot go on (yet).</summary>
    private async Task<BackendProgress?> DispatchAsync(BackendRun run, BatchJob job, CancellationToken cancellation, (int Number, string Indexes)? rerun = null)
    {
        var (ns, name) = (run.Namespace, run.Name);
        var plan = PodEntrypoint.PlanFiles(job);
        var planBytes = PodEntrypoint.SizeOf(plan);
        if (planBytes > PodEntrypoint.MaxPlanBytes)
        {
            // Failed, with no Failed condition: nothing ran, and a fixed spec dispatches.
            return Waiting(job, dispatched: false, Conditions.Reasons.PlanTooLarge,
                $"the sweep plan is {planBytes:N0} bytes, more than a ConfigMap holds ({PodEntrypoint.MaxPlanBytes:N0}); use a grid instead of a long list", TimeSpan.Zero) with
            {
                Phase = RunPhase.Failed,
            };
        }

        // A small plan travels in the Job; a large one goes in a ConfigMap first. Create first and look only on a
        // conflict: the common path costs one call, not two.
        var planMap = JobManifests.PlanConfigMap(job, run.Uid, plan);
        if (!PodEntrypoint.TravelsWithJob(plan) && !await cluster.CreateConfigMapAsync(planMap, cancellation).ConfigureAwait(false))
        {
            var existingPlan = await cluster.GetConfigMapAsync(ns, planMap.Metadata.Name, cancellation).ConfigureAwait(false);
            if (existingPlan is not null && (Value(existingPlan.Metadata.Labels, BatchJobResource.RunLabel) != run.RunId
                || existingPlan.Metadata.OwnerReferences?.Any(o => o.Uid == run.Uid) != true))
            {
                // A plan left from an earlier spec (changed before its Job was created) or an earlier object of this name.
                await cluster.DeleteConfigMapAsync(ns, planMap.Metadata.Name, cancellation).ConfigureAwait(false);
                if (!await cluster.CreateConfigMapAsync(planMap, cancellation).ConfigureAwait(false))
                {
                    return Waiting(job, dispatched: false, "", "", WhilePlanGoes);
                }
            }
        }

        var manifest = JobManifests.IndexedJob(job, run.Uid, cluster.Capabilities, settings, run.ExternalQueue, rerun, plan);
        if (await cluster.CreateJobAsync(manifest, cancellation).ConfigureAwait(false))
        {
            log.LogInformation("Created Job {Job} for {BatchJob} run {RunId}: {Completions} indexes, parallelism {Parallelism}",
                manifest.Metadata.Name, name, run.RunId, manifest.Spec.Completions, job.Spec.Parallelism);
        }
        else
        {
            log.LogInformation("Job {Job} of {BatchJob} run {RunId} already exists", manifest.Metadata.Name, name, run.RunId);
        }
        return null;
    }

    private async Task<BackendCondition> ApplySpecChangesAsync(BatchJob job, V1Job existing, string runId, CancellationToken cancellation)
    {
        var refused = new List<string>();
        var dispatchedRun = Value(existing.Metadata.Labels, BatchJobResource.RunLabel);
        if (dispatchedRun is not null && dispatchedRun != RunIdentity.For(job))
        {
            refused.Add(await ChangedResultFieldsAsync(job, existing, cancellation).ConfigureAwait(false));
        }

        var template = existing.Spec.Template.Spec;
        var timeout = job.Spec.TimeoutSeconds is { } t ? (long?)Math.Ceiling(t) : null;
        if (template.ActiveDeadlineSeconds != timeout)
        {
            refused.Add("spec.timeoutSeconds");
        }

        var retries = job.Spec.Retry.Attempts - 1;
        var dispatchedRetries = existing.Spec.BackoffLimitPerIndex ?? ((existing.Spec.Completions ?? 0) == 0 ? 0 : (existing.Spec.BackoffLimit ?? 0) / Math.Max(1, existing.Spec.Completions ?? 1));
        if (dispatchedRetries != retries)
        {
            refused.Add("spec.retry.attempts");
        }

        var finished = existing.Status?.Conditions?.Any(c => c.Status == "True" && c.Type is "Complete" or "Failed") == true;
        var deadline = job.Spec.DeadlineSeconds is { } d ? (long?)Math.Ceiling(d) : null;
        if (refused.Count == 0 && !finished && (existing.Spec.Parallelism != job.Spec.Parallelism || existing.Spec.ActiveDeadlineSeconds != deadline))
        {
            await cluster.PatchJobAsync(job.Metadata.Namespace, existing.Metadata.Name, job.Spec.Parallelism, deadline, cancellation).ConfigureAwait(false);
            log.LogInformation("Applied parallelism {Parallelism} and deadline {Deadline} to running Job {Job}", job.Spec.Parallelism, deadline, existing.Metadata.Name);
        }

        return refused.Count == 0
            ? new BackendCondition(true, Conditions.Reasons.UpToDate, $"Job {existing.Metadata.Name} runs the current spec")
            : new BackendCondition(false, Conditions.Reasons.ImmutableFieldChanged,
                $"{string.Join(", ", refused)} changed after dispatch and cannot change on a running Job; run {dispatchedRun ?? runId} goes on with the spec it started with. Delete and re-create the BatchJob to run the new spec");
    }

    /// <summary>Names the results-defining fields that differ from the dispatched spec kept in the plan (the Job's, else the ConfigMap's).</summary>
    private async Task<string> ChangedResultFieldsAsync(BatchJob job, V1Job existing, CancellationToken cancellation)
    {
        var plan = JobManifests.InlinePlanOf(existing)
            ?? (await cluster.GetConfigMapAsync(job.Metadata.Namespace, BatchJobResource.PlanConfigMapName(job.Metadata.Name), cancellation).ConfigureAwait(false))?.Data;
        if (Value(plan, PodEntrypoint.SpecKey) is not { } dispatchedJson)
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

    /// <summary>The run's pods that have started (Running and not being deleted): what a lower allowance must keep.</summary>
    private async Task<int> RunningPodsAsync(BackendRun run, CancellationToken cancellation)
    {
        var pods = await cluster.ListPodsAsync(run.Namespace, $"{BatchJobResource.BatchJobLabel}={run.Name}", cancellation).ConfigureAwait(false);
        return pods.Count(p => p.Status?.Phase == "Running" && p.Metadata.DeletionTimestamp is null);
    }

    /// <summary>
    /// Runtimes of the run's succeeded pods (container start to finish), for its queue's estimates: read when more
    /// indexes succeeded since the last read, at most every <see cref="RuntimeSampleInterval"/>, so a large run costs a
    /// pod list now and then, not one per reconcile.
    /// </summary>
    private async Task<Core.Scheduling.RuntimeSummary?> RuntimesAsync(BackendRun run, V1Job? existing, CancellationToken cancellation)
    {
        var succeeded = existing?.Status?.Succeeded ?? 0;
        var now = Environment.TickCount64;
        if (succeeded == 0 || _sampled.TryGetValue(SampleKey(run), out var last) && (last.Succeeded >= succeeded || now - last.At < RuntimeSampleInterval.TotalMilliseconds))
        {
            return null;
        }

        _sampled[SampleKey(run)] = (succeeded, now);
        var pods = await cluster.ListPodsAsync(run.Namespace, $"{BatchJobResource.BatchJobLabel}={run.Name}", cancellation).ConfigureAwait(false);
        var runtimes = pods
            .Where(p => p.Status?.Phase == "Succeeded")
            .Select(p => p.Status.ContainerStatuses?.FirstOrDefault()?.State?.Terminated)
            .Where(t => t?.StartedAt is not null && t.FinishedAt is not null && t.FinishedAt >= t.StartedAt)
            .Select(t => t!.FinishedAt!.Value - t.StartedAt!.Value)
            .ToList();
        return Core.Scheduling.RuntimeSummary.Of(runtimes);
    }

    /// <param name="jobName">A rerun's Job: only its pods are read (their completion indexes are positions in its list).</param>
    private async Task<IReadOnlyCollection<int>?> FailedIndexesFromPodsAsync(V1Job? existing, BatchJob job, CancellationToken cancellation, string? jobName = null)
    {
        if (existing?.Status is not { Failed: > 0 } || existing.Status.FailedIndexes is not null || !cluster.Capabilities.IndexedJobs)
        {
            return null;
        }

        var selector = jobName is null ? $"{BatchJobResource.BatchJobLabel}={job.Metadata.Name},!{JobManifests.RerunLabel}" : $"job-name={jobName}";
        var pods = await cluster.ListPodsAsync(job.Metadata.Namespace, selector, cancellation).ConfigureAwait(false);
        var jobFailed = existing.Status.Conditions?.Any(c => c.Type == "Failed" && c.Status == "True") == true;
        return pods
            .Select(p => (Index: Value(p.Metadata.Annotations, Core.Runs.WorkloadLabels.CompletionIndexAnnotation), Phase: p.Status?.Phase))
            .Where(p => p.Index is not null)
            .GroupBy(p => int.Parse(p.Index!, CultureInfo.InvariantCulture))
            .Where(g => g.All(p => p.Phase != "Succeeded") && (jobFailed || g.Count(p => p.Phase == "Failed") >= job.Spec.Retry.Attempts))
            .Select(g => g.Key)
            .ToList();
    }

    private static BackendProgress FromDerived(
        BatchJobStatus derived, BatchJob? job, bool Dispatched, string reason, string message, string? failureReason, string? failureMessage) => new(
        derived.Phase ?? RunPhase.Pending,
        derived.Total ?? job?.Spec.Completions ?? 0,
        derived.Succeeded ?? 0,
        derived.Failed ?? 0,
        derived.Active ?? 0,
        derived.FailedIndexes,
        derived.StartTime,
        derived.CompletionTime,
        Dispatched,
        reason,
        message,
        failureReason,
        failureMessage,
        State: null,
        WhileRunning);

    private static BackendProgress Waiting(BatchJob job, bool dispatched, string reason, string message, TimeSpan pollAfter) => new(
        RunPhase.Pending, job.Spec.Completions, 0, 0, 0, null, null, null, dispatched, reason, message, null, null, State: null, pollAfter);

    private static BatchJob WithParallelism(BatchJob job, int parallelism) =>
        parallelism == job.Spec.Parallelism ? job : job with { Spec = job.Spec with { Parallelism = parallelism } };

    private static string? Value(IDictionary<string, string>? map, string key) =>
        map is not null && map.TryGetValue(key, out var value) ? value : null;

    private static bool IsOwnedBy(V1Job job, string uid) =>
        job.Metadata.OwnerReferences?.Any(o => o.Uid == uid && o.Controller == true) == true;
}
