using System.Collections.Concurrent;
using BatchRunner.Backends;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Core.Scheduling;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Controller.Hosting;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Intake;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller.Intake;

/// <summary>
/// Runs the submissions the local intake recorded, at most <see cref="LocalIntakeOptions.MaxConcurrentJobs"/> at once,
/// each on the backend its spec names among the controller's (<see cref="ControllerBackends"/>: local processes, and
/// AWS Batch or any other registered), followed to its end by the <see cref="BackendDriver"/> as the CLI follows a
/// run. Which go, and how many indexes each may run at once, is decided by the queues
/// (<see cref="QueueConfiguration"/>; without any, the default queue lets every one run at its parallelism, oldest
/// first): a cycle over what runs and what waits, each time something is recorded or finishes and every second,
/// whose decisions (why a BatchJob waits, its place, its estimate) and tenants' usage are kept beside the store
/// (<see cref="QueueSnapshot"/>) for <c>batchrunner queue</c> and the next start. A submission being run when the
/// controller stopped (or died) stays Running in the store and is resumed at the next start: local processes are
/// found by run id (the executor kills what the dead runner left and reruns only the indexes that had not
/// succeeded), a remote backend's state is kept beside the store. On when the controller runs without Kubernetes.
/// </summary>
public sealed class LocalSubmissionRunner(
    IServiceProvider services,
    IOptions<KubernetesOptions> kubernetes,
    IOptions<LocalIntakeOptions> options,
    ControllerBackends backends,
    TimeProvider time,
    ILoggerFactory logs,
    IConfiguration? configuration = null,
    ControllerMetrics? metrics = null) : BackgroundService
{
    /// <summary>How often the queues are looked at again when nothing happens (finished indexes free room).</summary>
    private static readonly TimeSpan Cycle = TimeSpan.FromSeconds(1);

    /// <summary>Submissions considered for admission in one cycle, oldest first.</summary>
    private const int Candidates = 1_000;

    private readonly ILogger<LocalSubmissionRunner> _log = logs.CreateLogger<LocalSubmissionRunner>();
    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Followed> _followed = new(StringComparer.Ordinal);
    private readonly Dictionary<long, BatchJob?> _parsed = [];
    private readonly AdmissionBoard _board = new();
    private readonly HashSet<string> _admitted = new(StringComparer.Ordinal);
    private IReadOnlyList<TenantUsage>? _usage;

    /// <summary>The latest decisions, for tests and health: who may run how many indexes, and why the rest waits.</summary>
    public AdmissionBoard Admissions => _board;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (kubernetes.Value.Enabled)
        {
            return;
        }

        var settings = options.Value;
        var store = services.GetRequiredService<SubmissionStore>();
        var storeRoot = settings.ResolveStoreRoot();
        var registry = backends.Registry(() => new LocalBackend(
            new LocalExecutor(new LocalRunOptions { StoreRoot = storeRoot, WorkingDirectory = settings.ResolveWorkingDirectory() }, time, logs.CreateLogger<LocalExecutor>()),
            storeRoot, time, stoppingToken));
        var (queues, refused) = QueueConfiguration.Read(configuration ?? new ConfigurationBuilder().Build(), registry.Names);
        foreach (var (name, errors) in refused)
        {
            _log.LogWarning("Queue {Queue} is refused: {Errors}; its BatchJobs wait until it is fixed", name, errors);
        }

        foreach (var queue in queues.Where(q => q.Overflow is not null))
        {
            // Splitting a run across backends is the cluster reconciler's (status.backends); here a run stays on spec.backend.
            _log.LogWarning("Queue {Queue}: overflow is not used in local mode (each BatchJob runs on its spec.backend); it applies in the controller on a cluster", queue.Name);
        }

        _usage = QueueSnapshot.UsageOf(QueueSnapshot.Read(storeRoot));
        _log.LogInformation("Running submissions from {Store}, {MaxJobs} BatchJob(s) at once, on backends {Backends}, in queues {Queues}",
            store.Path, settings.MaxConcurrentJobs, string.Join(", ", registry.Names.Select(b => b.Name)), string.Join(", ", queues.Select(q => q.Name)));
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var waiting = store.Runnable(Candidates, [.. _running.Keys]);
                Schedule(queues, refused, waiting, storeRoot);
                // Admitted ones go, oldest first; one that cannot run here at all goes too, to be refused saying why.
                foreach (var submission in waiting.Where(w => _board.Find(w.Key) is not { Allowance: 0 }
                    || _parsed.GetValueOrDefault(w.Sequence) is not { } parsed || registry.Check(parsed.Spec.Backend) is not null).Take(settings.MaxConcurrentJobs - _running.Count))
                {
                    if (_parsed.GetValueOrDefault(submission.Sequence) is { } job)
                    {
                        // Followed from now on by the cycles, with the allowance it starts with.
                        var followed = _followed[submission.Key] = new Followed(job, submission.Sequence) { Applied = job.Spec.Parallelism };
                        followed.Follow(_board.Find(submission.Key));
                    }

                    var task = Task.Run(() => RunAsync(store, registry, storeRoot, submission, settings, stoppingToken), CancellationToken.None);
                    _running[submission.Key] = task;
                    _ = task.ContinueWith(_ => { _running.TryRemove(submission.Key, out var _); _followed.TryRemove(submission.Key, out var _); },
                        CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }

                // Wake for a new submission, a finished run (a free slot), the next cycle, or the poll (other writers).
                var finished = _running.IsEmpty ? Task.Delay(Timeout.Infinite, stoppingToken) : Task.WhenAny(_running.Values);
                var wait = TimeSpan.FromSeconds(Math.Min(settings.PollIntervalSeconds, Cycle.TotalSeconds));
                await Task.WhenAny(store.WaitForRecordAsync(wait, stoppingToken), finished).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: the runs stop with the same token and are resumed at the next start.
        }

        await Task.WhenAll(_running.Values).ConfigureAwait(false);
    }

    /// <summary>One cycle over what runs and what waits; its decisions are published and kept beside the store.</summary>
    private void Schedule(IReadOnlyList<QueueDefinition> queues, IReadOnlyDictionary<string, string> refused, IReadOnlyList<SubmissionRecord> waiting, string storeRoot)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var now = time.GetUtcNow();
        var queued = new List<QueuedWorkload>();
        foreach (var followed in _followed.Values)
        {
            queued.Add(new QueuedWorkload(WorkloadOf(followed.Job, followed.Sequence, followed.Progress, followed.Applied), followed.Progress?.Runtimes));
        }

        foreach (var gone in _parsed.Keys.Where(k => waiting.All(w => w.Sequence != k)).ToList())
        {
            _parsed.Remove(gone);
        }

        foreach (var submission in waiting)
        {
            if (!_parsed.TryGetValue(submission.Sequence, out var job))
            {
                _parsed[submission.Sequence] = job = BatchJobParser.Parse(submission.Document).Job;
            }

            if (job is not null)
            {
                queued.Add(new QueuedWorkload(WorkloadOf(job, submission.Sequence, null, 0), null));
            }
        }

        var result = QueueCycle.Run(queues, queued, _usage ?? [], now, refused);
        _usage = result.Usage;
        var standings = result.Standings;
        _board.Publish(standings, now);
        if (metrics is not null)
        {
            metrics.RecordQueues(result.Queues);
            metrics.SchedulerCycleDuration.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
            foreach (var submission in waiting.Where(w => standings.GetValueOrDefault(w.Key) is { Allowance: > 0 } && _admitted.Add(w.Key)))
            {
                metrics.AdmissionWait.WithLabels(standings[submission.Key].Queue).Observe(Math.Max(0, (now - submission.ReceivedAt).TotalSeconds));
            }

            _admitted.IntersectWith(standings.Keys);
        }

        try
        {
            QueueSnapshot.Write(storeRoot, QueueSnapshot.ToJson(result, refused, now));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("Could not keep the queues' state beside the store: {Error}", e.Message);
        }
    }

    private static Workload WorkloadOf(BatchJob job, long sequence, BackendProgress? progress, int applied)
    {
        var spec = job.Spec;
        var remaining = Math.Max(0, (progress?.Total ?? spec.Completions) - (progress?.Succeeded ?? 0) - (progress?.Failed ?? 0));
        return new Workload($"{job.Metadata.Namespace}/{job.Metadata.Name}", job.Metadata.Namespace, spec.Queue ?? QueueDefinition.DefaultName, spec.Backend, spec.Priority,
            sequence, spec.Parallelism, remaining, Math.Min(remaining, progress?.Active ?? 0), spec.Resources.MilliCpu, spec.Resources.MemoryBytes, spec.PriorityClass, applied);
    }

    /// <summary>A run being followed: what its backend last said, and the allowance it was last given.</summary>
    private sealed class Followed(BatchJob job, long sequence)
    {
        private int? _limit;

        public BatchJob Job { get; } = job;
        public long Sequence { get; } = sequence;
        public BackendProgress? Progress { get; set; }

        /// <summary>The allowance it runs within (its wanted indexes when nothing holds it back).</summary>
        public int Applied { get; set; }

        /// <summary>
        /// The limit to hand its backend under the latest standing (kept while a cycle has none for it): the allowance
        /// while some of its indexes wait, none (its parallelism) once it is admitted in full.
        /// </summary>
        public int? Follow(Standing? standing)
        {
            if (standing is not null)
            {
                Applied = standing.Allowance;
                _limit = standing.IsWaiting ? standing.Allowance : null;
            }

            return _limit;
        }
    }

    /// <summary>
    /// What this start of a submission runs: the whole run (rerun 0), the rerun it was following (a restart), or a rerun
    /// asked through the queue of its finished run, taken now (its indexes resolved against where the run stands on its
    /// backend) or refused with why (null: nothing runs).
    /// </summary>
    private async Task<(IndexSelection? Indexes, int Rerun)> RerunOfAsync(
        SubmissionStore store, IBatchBackend backend, string storeRoot, SubmissionRecord submission, BatchJob job, string runId, CancellationToken stopping)
    {
        if (submission.State == SubmissionState.Running && submission.RerunIndexes is { } following)
        {
            return (IndexSelection.Of(IndexRanges.Parse(following)), submission.Reruns);
        }

        if (!submission.IsFinished || !submission.RerunPending)
        {
            return (IndexSelection.All, 0);
        }

        var request = submission.RerunRequest!;
        var standing = await BackendDriver.LookAsync(backend, job, runId, storeRoot, _log, stopping).ConfigureAwait(false);
        string? error = null;
        var chosen = submission.State == SubmissionState.Cancelled ? null : RerunRequest.Resolve(request, job.Spec.Completions, standing.FailedIndexes, out error);
        if (chosen is null)
        {
            error ??= "a cancelled run is not rerun; submit it again to resume it";
            store.RefuseRerun(submission.Namespace, submission.Name, request, error);
            _log.LogWarning("BatchJob {Namespace}/{Name}: rerun {Request} refused: {Error}", submission.Namespace, submission.Name, request, error);
            return (null, 0);
        }

        var number = Math.Max(submission.Reruns, standing.Reruns) + 1;
        var indexes = IndexSelection.Of(chosen);
        store.TakeRerun(submission.Namespace, submission.Name, request, number, indexes.Ranges!);
        return (indexes, number);
    }

    private async Task RunAsync(SubmissionStore store, BackendRegistry registry, string storeRoot, SubmissionRecord submission, LocalIntakeOptions settings, CancellationToken stopping)
    {
        using var scope = _log.BeginScope(new Dictionary<string, object> { ["BatchJob"] = submission.Key });
        var parsed = BatchJobParser.Parse(submission.Document);
        if (!parsed.IsValid)
        {
            // Recorded documents are canonical and parsed before: this is a store written by something else.
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, "InvalidSpec: " + string.Join("; ", parsed.Errors));
            return;
        }

        var job = parsed.Job!;
        if (!registry.TryResolve(job.Spec.Backend, out var backend, out var unavailable))
        {
            // Recorded when the backend was there (the controller restarted with other settings).
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, "BackendUnavailable: " + unavailable);
            return;
        }

        if (submission.Starts >= settings.MaxStarts)
        {
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed,
                $"RunnerError: started {submission.Starts} times without finishing; last: {submission.Reason}");
            return;
        }

        var runId = RunIdentity.For(job);
        var (indexes, rerun) = await RerunOfAsync(store, backend, storeRoot, submission, job, runId, stopping).ConfigureAwait(false);
        if (indexes is null)
        {
            return;
        }

        if (rerun == 0)
        {
            store.MarkStarted(submission.Namespace, submission.Name, runId);
        }

        _log.LogInformation("{Action} BatchJob {Namespace}/{Name} run {RunId} on {Backend}",
            rerun > 0 ? $"Rerunning indexes {indexes.Ranges} of" : submission.State == SubmissionState.Running ? "Resuming" : "Starting",
            submission.Namespace, submission.Name, runId, backend.Backend.Name);
        try
        {
            var run = new BackendRun(job, job.Metadata.Namespace, job.Metadata.Name, runId, 0, runId, indexes, null, AllowSubmit: true) { Rerun = rerun };
            var followed = _followed.GetOrAdd(submission.Key, _ => new Followed(job, submission.Sequence) { Applied = job.Spec.Parallelism });
            var outcome = await BackendDriver.FollowAsync(
                backend, run, BackendStateFile.For(storeRoot, run, backend.Backend.Name), progress => followed.Progress = progress, time, logs.CreateLogger(nameof(BackendDriver)), stopping,
                allowance: () => followed.Follow(_board.Find(submission.Key)),
                prices: services.GetService<BatchRunner.Core.Costs.PriceTable>() ?? BatchRunner.Core.Costs.PriceTable.Defaults).ConfigureAwait(false);
            var last = outcome.Progress;
            if (outcome.StoppedFollowing || last.Phase == RunPhase.Cancelled && stopping.IsCancellationRequested)
            {
                // Our own shutdown, not `batchrunner cancel`: it stays Running, to be resumed (or followed again).
                return;
            }

            if (outcome.Refused)
            {
                store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, $"{last.Reason}: {last.Message}");
                _log.LogWarning("BatchJob {Namespace}/{Name} was refused by {Backend}: {Message}", submission.Namespace, submission.Name, backend.Backend.Name, last.Message);
                return;
            }

            var state = last.Phase switch
            {
                RunPhase.Succeeded => SubmissionState.Succeeded,
                RunPhase.Cancelled => SubmissionState.Cancelled,
                _ => SubmissionState.Failed,
            };
            store.MarkFinished(submission.Namespace, submission.Name, state, last.FailureMessage);
            _log.LogInformation("BatchJob {Namespace}/{Name} run {RunId} {Phase}: {Succeeded} of {Total} indexes succeeded",
                submission.Namespace, submission.Name, runId, last.Phase.ToString(), last.Succeeded, last.Total);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Resumed at the next start.
        }
        catch (InvalidSpecException e)
        {
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, "InvalidSpec: " + string.Join("; ", e.Errors));
            _log.LogWarning("BatchJob {Namespace}/{Name} cannot run: {Errors}", submission.Namespace, submission.Name, string.Join("; ", e.Errors));
        }
        catch (Exception e)
        {
            // RunBusyException (the same run in another process) or the runner's own trouble: try again later.
            store.Defer(submission.Namespace, submission.Name, time.GetUtcNow().AddSeconds(settings.RetryDelaySeconds), e.Message);
            _log.LogWarning("BatchJob {Namespace}/{Name} did not run ({Error}); trying again in {Delay}s",
                submission.Namespace, submission.Name, e.Message, settings.RetryDelaySeconds);
        }
    }
}
