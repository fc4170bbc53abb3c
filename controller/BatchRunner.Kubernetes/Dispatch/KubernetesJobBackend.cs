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
/// ConfigMap when large), or several for a run larger than a Job holds (<see cref="JobParts"/>), named after the
/// BatchJob and owned by it. Nothing is remembered between reconciles: where the run stands is derived from the Jobs
/// (and their pods when a Job does not name its failed indexes) every time, so this backend keeps no state.
/// </summary>
public sealed class KubernetesJobBackend(IClusterApi cluster, DispatchSettings settings, ILogger<KubernetesJobBackend> log, TimeProvider? time = null) : IBatchBackend
{
    /// <summary>
    /// How long a new Job the Job controller has not counted yet (no start time) is left to report back by itself: its
    /// first count comes through the Job informer, and one status write then says both dispatched and running.
    /// </summary>
    private static readonly TimeSpan FirstCountWindow = TimeSpan.FromSeconds(5);

    /// <summary>The same while new BatchJobs keep arriving (<see cref="IClusterApi.Busy"/>): their Jobs go first; the host reconciles the waiting ones once arrivals pause.</summary>
    private static readonly TimeSpan BusyCountWindow = TimeSpan.FromSeconds(30);

    private TimeSpan CountWindow => cluster.Busy ? BusyCountWindow : FirstCountWindow;

    /// <summary>
    /// How long a Job is waited for past its window while the Job controller is counting others
    /// (<see cref="IClusterApi.JobsBeingCounted"/>): in a burst it reaches the last Jobs a minute or more after the
    /// first, and a write before their count would be one more per BatchJob. A Job it never reaches (its pods refused
    /// by a quota, say) has its status written once it stops counting, or after this long on a cluster always busy.
    /// </summary>
    private static readonly TimeSpan LongestCountWait = TimeSpan.FromMinutes(2);

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

        // The run's Jobs: one, or several parts of a run larger than a Job holds. A part of a run its queue split
        // across backends holds only its indexes (completion i runs the i-th of them), and the counts are the part's.
        var indexes = run.Indexes.IsAll ? null : IndexRanges.Parse(run.Indexes.Ranges);
        var total = indexes?.Count ?? job.Spec.Completions;
        var parts = JobParts.Of(name, total, indexes, settings.MaxCompletionsPerJob);
        var jobs = parts.Select(p => cluster.GetJob(ns, p.Name)).ToArray();
        var jobName = parts[0].Name;
        if (parts.Zip(jobs).FirstOrDefault(p => p.Second is { } found && !IsOwnedBy(found, run.Uid)).First is { } taken)
        {
            return Waiting(job, dispatched: false, Conditions.Reasons.DispatchFailed,
                $"a Job named {taken.Name} exists and belongs to something else; BatchRunner will not take it over", WhileRunning) with { Degraded = degraded };
        }

        // 1. The run's parallelism, within its allowance, shared out over its Jobs in part order. A lower allowance is
        //    applied down to the pods already running: a Job whose parallelism drops below its active pods deletes the
        //    surplus, those not running first, so only pods that have not started go (their indexes wait), and no
        //    running index is killed for it.
        var parallelism = run.ParallelismNow(job);
        var remaining = parts.Select((p, i) => RemainingOf(p, jobs[i])).ToArray();
        var floors = parallelism < job.Spec.Parallelism && jobs.Any(j => j is not null && parallelism < (j.Spec.Parallelism ?? 0) && (j.Status?.Active ?? 0) > 0)
            && jobs.Sum(j => j?.Status?.Active ?? 0) > parallelism
            ? await RunningPodsAsync(run, parts, cancellation).ConfigureAwait(false)
            : new int[parts.Count];
        var shares = JobParts.Shares(Math.Min(job.Spec.Parallelism, Math.Max(parallelism, floors.Sum())), remaining, floors);

        // 2. Create what is missing under deterministic names (the plan first when it does not travel in the Job), once
        //    its queue lets an index start; a refusal (a quota, the object's size) is said on the status and tried again.
        var events = new List<BackendEvent>();
        string? refused = null;
        IReadOnlyList<JobPart> created = [];
        if (jobs.Any(j => j is null))
        {
            if (jobs.All(j => j is null) && !run.AllowSubmit)
            {
                return Waiting(job, dispatched: false, Conditions.Reasons.ImmutableFieldChanged, "nothing is dispatched for a run whose spec changed", WhileRunning) with { Degraded = degraded };
            }

            if (jobs.All(j => j is null) && parallelism == 0)
            {
                return Waiting(job, dispatched: false, BackendReasons.Queued, "waiting in its queue for room: no Job until an index may start", WhileRunning) with { Degraded = degraded };
            }

            if (run.AllowSubmit)
            {
                (var stop, created, refused) = await DispatchAsync(run, job, parts, jobs, shares, cancellation).ConfigureAwait(false);
                if (stop is not null)
                {
                    return stop with { Degraded = degraded };
                }

                if (created.Count > 0)
                {
                    events.Add(new BackendEvent("Normal", "Dispatched", CreatedMessage(run, job, parts, created, total, shares)));
                }
                else if (jobs.All(j => j is null))
                {
                    return Waiting(job, dispatched: false, Conditions.Reasons.JobRefused, refused ?? "", RefusedRetry) with { Degraded = degraded };
                }
            }
        }

        // 2b. Jobs that mount the namespace's shared scripts keep them there: a copy deleted by hand is made again, so
        //     their pods still to start can mount it.
        if (jobs.Any(j => j is not null && !IsFinished(j) && MountsSharedScripts(j)))
        {
            await EnsureSharedScriptsAsync(job, ns, cancellation).ConfigureAwait(false);
        }

        // 3. Running Jobs follow what may change (their share of the parallelism, the deadline); anything else that
        //    changed is refused visibly. Jobs this call created run the current spec by construction: saying so now
        //    spares a status write later.
        var applied = jobs.All(j => j is null)
            ? new BackendCondition(true, Conditions.Reasons.UpToDate, $"{JobsText(parts)} the current spec")
            : await ApplySpecChangesAsync(job, parts, jobs, shares, remaining, run.RunId, cancellation).ConfigureAwait(false);

        // 4. Where it stands, derived from the Jobs (and their pods when a Job does not name its failed indexes).
        var derivedParts = new List<BatchJobStatus>(parts.Count);
        foreach (var (part, existing) in parts.Zip(jobs))
        {
            var failedPositions = await FailedIndexesFromPodsAsync(existing, job, cancellation, parts.Count > 1 ? part.Name : null).ConfigureAwait(false);
            var partStatus = StatusDerivation.FromJob(new BatchJobStatus(), existing, part.Count, failedPositions);
            if (part.Ranges is { } partIndexes && partStatus.FailedIndexes is { } positions)
            {
                var mapped = IndexRanges.Parse(partIndexes);
                partStatus = partStatus with { FailedIndexes = IndexRanges.Format(IndexRanges.Parse(positions).Where(p => p < mapped.Count).Select(p => mapped[p])) };
            }

            derivedParts.Add(partStatus);
        }

        var derived = StatusDerivation.FromParts(derivedParts, total);
        var failedPart = derivedParts.FindIndex(p => p.Phase == RunPhase.Failed);
        var failure = derived.Phase == RunPhase.Failed && failedPart >= 0 && StatusDerivation.FailureOf(jobs[failedPart]) is { } why
            ? parts.Count > 1 ? (why.Reason, $"Job {parts[failedPart].Name}: {why.Message}") : why
            : ((string Reason, string Message)?)null;
        var runtimes = await RuntimesAsync(run, derived.Succeeded ?? 0, cancellation).ConfigureAwait(false);
        var (reason, message) = jobs[0]?.Spec.Suspend == true && jobs[0]!.Metadata.Labels?.TryGetValue(JobManifests.KueueQueueLabel, out var localQueue) == true
            ? ("WaitingForKueue", $"Job {jobName} is suspended until Kueue LocalQueue {localQueue} admits it")
            : refused is not null ? (Conditions.Reasons.JobRefused, refused)
            : (Conditions.Reasons.JobCreated, parts.Count == 1
                ? $"Job {jobName} runs {jobs[0]?.Spec.Completions ?? total} indexes, {shares[0]} at a time"
                : $"{parts.Count} Jobs ({jobName} to {parts[^1].Name}) run {total} indexes, {settings.MaxCompletionsPerJob} each at most, {shares.Sum()} at a time");

        // 5. A Job created now, or one so new the Job controller has not counted it, comes back through the Job
        //    informer in a moment with its first count; till then (a few seconds at most) nothing needs writing.
        var uncounted = parts.Select((part, i) => jobs[i] is null ? created.Contains(part) ? CountWindow : (TimeSpan?)null : UntilCounted(jobs[i])).Max();
        var progress = FromDerived(derived, job, Dispatched: refused is null, reason, message,
            failure?.Reason, failure?.Message) with
        {
            JobName = jobName,
            RunId = Value(jobs.FirstOrDefault(j => j is not null)?.Metadata.Labels, BatchJobResource.RunLabel),
            ReportsBack = uncounted is not null && refused is null,
            PollAfter = refused is not null ? RefusedRetry : uncounted ?? WhileRunning,
            SpecApplied = applied,
            Degraded = degraded,
            Events = events,
            Runtimes = runtimes,
        };
        _usage.Observe(run, progress);
        return progress;
    }

    /// <summary>How soon a Job the API server refused is asked for again (a quota may have room by then).</summary>
    private static readonly TimeSpan RefusedRetry = TimeSpan.FromSeconds(30);

    /// <summary>"Job x runs" or "Jobs x to x-part-n run", for messages.</summary>
    private static string JobsText(IReadOnlyList<JobPart> parts) =>
        parts.Count == 1 ? $"Job {parts[0].Name} runs" : $"Jobs {parts[0].Name} to {parts[^1].Name} run";

    private static string CreatedMessage(BackendRun run, BatchJob job, IReadOnlyList<JobPart> parts, IReadOnlyList<JobPart> created, int total, int[] shares)
    {
        if (parts.Count == 1)
        {
            return run.Indexes.IsAll
                ? $"Created Job {parts[0].Name} with {total} indexes, parallelism {shares[0]}"
                : $"Created Job {parts[0].Name} with {total} of the run's indexes ({run.Indexes.Ranges}), parallelism {shares[0]}";
        }

        var names = created.Count == 1 ? created[0].Name : $"{created[0].Name} to {created[^1].Name}";
        return $"Created {created.Count} of {parts.Count} Jobs ({names}) for {total} indexes, at most {parts.Max(p => p.Count)} each, parallelism {Math.Min(job.Spec.Parallelism, shares.Sum())} across them";
    }

    /// <summary>Indexes of a part not finished yet: all of them before its Job exists, none once it finished.</summary>
    private static int RemainingOf(JobPart part, V1Job? job)
    {
        if (job?.Status is not { } status)
        {
            return part.Count;
        }

        if (IsFinished(job))
        {
            return 0;
        }

        var failed = status.FailedIndexes is { Length: > 0 } text ? IndexRanges.Count(text) : 0;
        return Math.Max(0, part.Count - (status.Succeeded ?? 0) - failed);
    }

    /// <summary>
    /// What is left of <see cref="CountWindow"/> (or of <see cref="LongestCountWait"/> while the Job controller counts
    /// others) for a Job not counted yet; null once it was counted, or waited for long enough.
    /// </summary>
    private TimeSpan? UntilCounted(V1Job? existing)
    {
        if (existing is null)
        {
            return null;
        }

        if (existing.Status?.StartTime is not null || existing.Spec.Suspend == true || existing.Metadata.CreationTimestamp is not { } created)
        {
            return null;
        }

        var age = _time.GetUtcNow().UtcDateTime - DateTime.SpecifyKind(created, DateTimeKind.Utc);
        var left = (age < CountWindow ? CountWindow : cluster.JobsBeingCounted ? LongestCountWait : TimeSpan.Zero) - age;
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

            if (chosen.Count > settings.MaxCompletionsPerJob)
            {
                return Waiting(job, dispatched: false, Conditions.Reasons.DispatchFailed,
                    $"the rerun chooses {chosen.Count:N0} indexes, more than one Job runs ({settings.MaxCompletionsPerJob:N0}); rerun them in parts", TimeSpan.Zero)
                    with { Phase = RunPhase.Failed, State = state.ToJson(), RefusedForInput = true };
            }

            var (stop, _, refused) = await DispatchAsync(run, job, [new JobPart(0, jobName, 0, chosen.Count, state.Indexes) { RerunNumber = state.Number }], [null], [parallelism], cancellation)
                .ConfigureAwait(false);
            if (stop is not null || refused is not null)
            {
                return (stop ?? Waiting(job, dispatched: false, Conditions.Reasons.JobRefused, refused!, RefusedRetry)) with { State = state.ToJson() };
            }

            events.Add(new BackendEvent("Normal", "Dispatched", $"Created Job {jobName} to rerun {chosen.Count} indexes ({state.Indexes}), parallelism {parallelism}"));
        }
        else if (!IsOwnedBy(existing, run.Uid))
        {
            return Waiting(job, dispatched: false, Conditions.Reasons.DispatchFailed,
                $"a Job named {jobName} exists and belongs to something else; BatchRunner will not take it over", WhileRunning) with { State = state.ToJson() };
        }
        else if (parallelism > (existing.Spec.Parallelism ?? 0) && !IsFinished(existing))
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
        var ns = run.Namespace;
        if (RerunJobOf(run) is { } rerunJob && !IsFinished(rerunJob))
        {
            await cluster.DeleteJobAsync(ns, rerunJob.Metadata.Name, cancellation).ConfigureAwait(false);
        }

        var jobs = OwnJobsOf(run);
        foreach (var existing in jobs.Where(j => !IsFinished(j)))
        {
            await cluster.DeleteJobAsync(ns, existing.Metadata.Name, cancellation).ConfigureAwait(false);
        }

        _usage.Forget(run);
        var total = run.Job?.Spec.Completions ?? jobs.Sum(j => j.Spec.Completions ?? 0);
        var derived = StatusDerivation.FromParts([.. jobs.Select(j => StatusDerivation.FromJob(new BatchJobStatus(), j, j.Spec.Completions ?? 0, null))], total);
        log.LogInformation("Cancelled {BatchJob}", run.Name);
        return FromDerived(derived, run.Job, Dispatched: true, "", "", null, null) with
        {
            Phase = RunPhase.Cancelled,
            JobName = jobs.Count == 0 ? null : jobs[0].Metadata.Name,
            CompletionTime = null,
        };
    }

    public async Task<BackendRelease> ReleaseAsync(BackendRun run, string reason, CancellationToken cancellation)
    {
        var ns = run.Namespace;
        _usage.Forget(run);
        _sampled.TryRemove(SampleKey(run), out _);
        var jobs = OwnJobsOf(run);
        foreach (var job in jobs)
        {
            await cluster.DeleteJobAsync(ns, job.Metadata.Name, cancellation).ConfigureAwait(false);
        }

        // Reruns' Jobs go with the BatchJob's owner reference; the one that may still run is stopped now.
        if (RerunJobOf(run) is { } rerunJob)
        {
            await cluster.DeleteJobAsync(ns, rerunJob.Metadata.Name, cancellation).ConfigureAwait(false);
        }

        await cluster.DeleteConfigMapAsync(ns, BatchJobResource.PlanConfigMapName(run.Name), cancellation).ConfigureAwait(false);
        foreach (var job in jobs)
        {
            if (await cluster.JobExistsAsync(ns, job.Metadata.Name, cancellation).ConfigureAwait(false) && cluster.GetJob(ns, job.Metadata.Name) is { } left && IsOwnedBy(left, run.Uid))
            {
                log.LogDebug("Waiting for Job {Job} and its pods to go before releasing {BatchJob}", job.Metadata.Name, run.Name);
                return BackendRelease.NotYet;
            }
        }

        return BackendRelease.Done;
    }

    /// <summary>
    /// The run's own Jobs (not its reruns') that exist and are this BatchJob's: as many parts as its spec makes, or,
    /// when the spec no longer parses, as many as the largest run makes (cache reads, no calls).
    /// </summary>
    private List<V1Job> OwnJobsOf(BackendRun run)
    {
        var parts = JobParts.CountOf(run.Job?.Spec.Completions ?? SpecLimits.MaxIndexes, settings.MaxCompletionsPerJob);
        return Enumerable.Range(0, parts)
            .Select(part => cluster.GetJob(run.Namespace, JobParts.NameOf(run.Name, part)))
            .OfType<V1Job>()
            .Where(job => IsOwnedBy(job, run.Uid))
            .ToList();
    }

    private static bool IsFinished(V1Job job) => job.Status?.Conditions?.Any(c => c.Status == "True" && c.Type is "Complete" or "Failed") == true;

    /// <summary>
    /// Creates the plan ConfigMap (a large plan), then the missing Jobs of the run in part order. Returns progress only
    /// when dispatch cannot go on (a plan too large, one left from an earlier spec still going); else the parts created
    /// and, when the API server refused one, why (the parts after it wait for the next look).
    /// </summary>
    private async Task<(BackendProgress? Stop, IReadOnlyList<JobPart> Created, string? Refused)> DispatchAsync(
        BackendRun run, BatchJob job, IReadOnlyList<JobPart> parts, V1Job?[] jobs, int[] shares, CancellationToken cancellation)
    {
        var plan = PodEntrypoint.PlanFiles(job);
        if (await EnsurePlanAsync(run, job, plan, cancellation).ConfigureAwait(false) is { } stop)
        {
            return (stop, [], null);
        }

        var created = new List<JobPart>();
        foreach (var part in parts.Where((_, i) => jobs[i] is null))
        {
            var manifest = JobManifests.IndexedJob(WithParallelism(job, shares[part.Number]), run.Uid, cluster.Capabilities, settings, run.ExternalQueue,
                part.Ranges is null ? null : (part.RerunNumber, part.Ranges), plan, part.Name);
            try
            {
                if (await cluster.CreateJobAsync(manifest, cancellation).ConfigureAwait(false))
                {
                    log.LogInformation("Created Job {Job} for {BatchJob} run {RunId}: {Completions} indexes, parallelism {Parallelism}",
                        manifest.Metadata.Name, run.Name, run.RunId, manifest.Spec.Completions, manifest.Spec.Parallelism);
                }
                else
                {
                    log.LogInformation("Job {Job} of {BatchJob} run {RunId} already exists", manifest.Metadata.Name, run.Name, run.RunId);
                }
            }
            catch (ObjectRefusedException e)
            {
                log.LogWarning("The API server refused Job {Job} of {BatchJob} ({Status}): {Reason}", part.Name, run.Name, e.StatusCode, e.Reason);
                var which = parts.Count == 1 ? "" : $" (part {part.Number + 1} of {parts.Count})";
                return (null, created, $"the API server refused Job {part.Name}{which}: {e.Reason}");
            }

            created.Add(part);
        }

        return (null, created, null);
    }

    /// <summary>
    /// When each namespace's shared scripts were last made sure of by this process: looked at again every few minutes,
    /// so a copy deleted by hand is made again while Jobs still mount it, at one call per namespace, not per Job.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _sharedScripts = new(StringComparer.Ordinal);

    private static readonly TimeSpan SharedScriptsLookAgain = TimeSpan.FromMinutes(5);

    private static bool MountsSharedScripts(V1Job job) => MountedConfigMaps(job).Contains(PodEntrypoint.SharedScriptsName, StringComparer.Ordinal);

    /// <summary>Creates the namespace's shared scripts unless this process did so lately (an existing copy is kept). Progress when the API server refuses it.</summary>
    private async Task<BackendProgress?> EnsureSharedScriptsAsync(BatchJob job, string ns, CancellationToken cancellation)
    {
        var now = _time.GetUtcNow();
        if (_sharedScripts.TryGetValue(ns, out var at) && now - at < SharedScriptsLookAgain)
        {
            return null;
        }

        try
        {
            if (await cluster.CreateConfigMapAsync(JobManifests.SharedScriptsConfigMap(ns), cancellation).ConfigureAwait(false))
            {
                log.LogInformation("Created the shared entrypoint scripts {ConfigMap} in {Namespace}", PodEntrypoint.SharedScriptsName, ns);
            }

            _sharedScripts[ns] = now;
            await RemoveOtherVersionsScriptsAsync(ns, cancellation).ConfigureAwait(false);
            return null;
        }
        catch (ObjectRefusedException e)
        {
            log.LogWarning("The API server refused the shared entrypoint scripts {ConfigMap} in {Namespace} ({Status}): {Reason}", PodEntrypoint.SharedScriptsName, ns, e.StatusCode, e.Reason);
            return Waiting(job, dispatched: false, Conditions.Reasons.JobRefused,
                $"the API server refused the entrypoint ConfigMap {PodEntrypoint.SharedScriptsName}: {e.Reason}", RefusedRetry);
        }
    }

    /// <summary>
    /// Deletes the shared scripts of other controller versions (another content, another name) that no unfinished Job
    /// in the namespace mounts, so that an upgrade leaves nothing behind once the Jobs of the version before are done.
    /// Looked at with the namespace's own copy, every few minutes while the namespace dispatches; a failure is only
    /// logged: the next look tries again, and dispatch goes on.
    /// </summary>
    private async Task RemoveOtherVersionsScriptsAsync(string ns, CancellationToken cancellation)
    {
        try
        {
            // The controller's ConfigMaps that belong to no BatchJob: not the runs' plans, which may be large.
            var selector = $"{BatchJobResource.ManagedByLabel}={BatchJobResource.ManagedByValue},!{BatchJobResource.BatchJobLabel}";
            var others = (await cluster.ListConfigMapsAsync(ns, selector, cancellation).ConfigureAwait(false))
                .Select(m => m.Metadata.Name).Where(PodEntrypoint.IsOtherVersionsScripts).ToList();
            if (others.Count == 0)
            {
                return;
            }

            var mounted = cluster.JobsIn(ns).Where(j => !IsFinished(j)).SelectMany(MountedConfigMaps).ToHashSet(StringComparer.Ordinal);
            foreach (var name in others.Where(n => !mounted.Contains(n)))
            {
                await cluster.DeleteConfigMapAsync(ns, name, cancellation).ConfigureAwait(false);
                log.LogInformation("Deleted the entrypoint scripts {ConfigMap} of another controller version in {Namespace}: no unfinished Job mounts them", name, ns);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning("Could not clear other controller versions' entrypoint scripts in {Namespace} (the controller lists and deletes ConfigMaps for it): {Reason}", ns, e.Message);
        }
    }

    private static IEnumerable<string> MountedConfigMaps(V1Job job) =>
        job.Spec.Template.Spec.Volumes?.SelectMany(v => (v.Projected?.Sources?.Select(s => s.ConfigMap?.Name) ?? []).Append(v.ConfigMap?.Name))
            .OfType<string>() ?? [];

    /// <summary>
    /// A small plan travels in the Job; a large one goes in a ConfigMap first. Create first and look only on a
    /// conflict: the common path costs one call, not two. Progress when dispatch cannot go on (yet).
    /// </summary>
    private async Task<BackendProgress?> EnsurePlanAsync(BackendRun run, BatchJob job, Dictionary<string, string> plan, CancellationToken cancellation)
    {
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

        if (PodEntrypoint.TravelsWithJob(plan))
        {
            return JobManifests.UsesSharedScripts(plan, settings) ? await EnsureSharedScriptsAsync(job, run.Namespace, cancellation).ConfigureAwait(false) : null;
        }

        var planMap = JobManifests.PlanConfigMap(job, run.Uid, plan);
        try
        {
            if (await cluster.CreateConfigMapAsync(planMap, cancellation).ConfigureAwait(false))
            {
                return null;
            }

            var existingPlan = await cluster.GetConfigMapAsync(run.Namespace, planMap.Metadata.Name, cancellation).ConfigureAwait(false);
            if (existingPlan is not null && (Value(existingPlan.Metadata.Labels, BatchJobResource.RunLabel) != run.RunId
                || existingPlan.Metadata.OwnerReferences?.Any(o => o.Uid == run.Uid) != true))
            {
                // A plan left from an earlier spec (changed before its Job was created) or an earlier object of this name.
                await cluster.DeleteConfigMapAsync(run.Namespace, planMap.Metadata.Name, cancellation).ConfigureAwait(false);
                if (!await cluster.CreateConfigMapAsync(planMap, cancellation).ConfigureAwait(false))
                {
                    return Waiting(job, dispatched: false, "", "", WhilePlanGoes);
                }
            }

            return null;
        }
        catch (ObjectRefusedException e)
        {
            log.LogWarning("The API server refused the plan of {BatchJob} ({Status}): {Reason}", run.Name, e.StatusCode, e.Reason);
            return Waiting(job, dispatched: false, Conditions.Reasons.JobRefused, $"the API server refused the plan ConfigMap {planMap.Metadata.Name}: {e.Reason}", RefusedRetry);
        }
    }

    /// <summary>
    /// Running Jobs of the run take their new share of the parallelism and the deadline; fields a running Job cannot
    /// change are refused (as the first Job shows them: every part runs the same spec).
    /// </summary>
    private async Task<BackendCondition> ApplySpecChangesAsync(
        BatchJob job, IReadOnlyList<JobPart> parts, V1Job?[] jobs, int[] shares, int[] remaining, string runId, CancellationToken cancellation)
    {
        var reference = jobs.First(j => j is not null)!;
        var refused = new List<string>();
        var dispatchedRun = Value(reference.Metadata.Labels, BatchJobResource.RunLabel);
        if (dispatchedRun is not null && dispatchedRun != RunIdentity.For(job))
        {
            refused.Add(await ChangedResultFieldsAsync(job, reference, cancellation).ConfigureAwait(false));
        }

        var template = reference.Spec.Template.Spec;
        var timeout = job.Spec.TimeoutSeconds is { } t ? (long?)Math.Ceiling(t) : null;
        if (template.ActiveDeadlineSeconds != timeout)
        {
            refused.Add("spec.timeoutSeconds");
        }

        var retries = job.Spec.Retry.Attempts - 1;
        var dispatchedRetries = reference.Spec.BackoffLimitPerIndex ?? ((reference.Spec.Completions ?? 0) == 0 ? 0 : (reference.Spec.BackoffLimit ?? 0) / Math.Max(1, reference.Spec.Completions ?? 1));
        if (dispatchedRetries != retries)
        {
            refused.Add("spec.retry.attempts");
        }

        var deadline = job.Spec.DeadlineSeconds is { } d ? (long?)Math.Ceiling(d) : null;
        for (var i = 0; i < parts.Count && refused.Count == 0; i++)
        {
            if (jobs[i] is not { } existing || IsFinished(existing))
            {
                continue;
            }

            var current = existing.Spec.Parallelism ?? 0;
            if (JobParts.NeedsPatch(current, shares[i], remaining[i], last: i == parts.Count - 1) || existing.Spec.ActiveDeadlineSeconds != deadline)
            {
                await cluster.PatchJobAsync(job.Metadata.Namespace, existing.Metadata.Name, shares[i], deadline, cancellation).ConfigureAwait(false);
                log.LogInformation("Applied parallelism {Parallelism} and deadline {Deadline} to running Job {Job}", shares[i], deadline, existing.Metadata.Name);
            }
        }

        return refused.Count == 0
            ? new BackendCondition(true, Conditions.Reasons.UpToDate, $"{JobsText(parts)} the current spec")
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

    /// <summary>The run's pods that have started (Running and not being deleted), per Job: what a lower allowance must keep.</summary>
    private async Task<int[]> RunningPodsAsync(BackendRun run, IReadOnlyList<JobPart> parts, CancellationToken cancellation)
    {
        var pods = await cluster.ListPodsAsync(run.Namespace, $"{BatchJobResource.BatchJobLabel}={run.Name}", cancellation).ConfigureAwait(false);
        var running = pods.Where(p => p.Status?.Phase == "Running" && p.Metadata.DeletionTimestamp is null).ToList();
        if (parts.Count == 1)
        {
            return [running.Count];
        }

        return [.. parts.Select(part => running.Count(p => Value(p.Metadata.Labels, "job-name") == part.Name))];
    }

    /// <summary>
    /// Runtimes of the run's succeeded pods (container start to finish), for its queue's estimates: read when more
    /// indexes succeeded since the last read, at most every <see cref="RuntimeSampleInterval"/>, so a large run costs a
    /// pod list now and then, not one per reconcile.
    /// </summary>
    private async Task<Core.Scheduling.RuntimeSummary?> RuntimesAsync(BackendRun run, int succeeded, CancellationToken cancellation)
    {
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
