using System.Collections.Concurrent;
using System.Globalization;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;

namespace BatchRunner.Local.Execution;

/// <summary>
/// Local processes as a backend: a run is the <see cref="LocalExecutor"/> running it beside the host, and lives as
/// long as the host that started it (<paramref name="hostStopping"/>): its processes are the host's children.
/// Where a run stands is read from the executor's live counters; nothing is kept between calls but the run in
/// flight, since the store's run state (resumed by run id) is what survives a restart.
/// </summary>
/// <param name="longPoll">How long a call waits for the run to finish before answering with where it stands.</param>
public sealed class LocalBackend(LocalExecutor executor, string storeRoot, TimeProvider time, CancellationToken hostStopping, TimeSpan? longPoll = null) : IBatchBackend
{
    private readonly ConcurrentDictionary<string, LocalRun> _runs = new(StringComparer.Ordinal);
    private readonly TimeSpan _longPoll = longPoll ?? TimeSpan.FromMilliseconds(200);

    public Backend Backend => Backend.Local;

    public BackendCapacity Capacity
    {
        get
        {
            var running = _runs.Values.Sum(r => r.Progress?.Running ?? 0);
            var cpu = _runs.Values.Sum(r => (r.Progress?.Running ?? 0) * r.Job.Spec.Resources.MilliCpu);
            var memory = _runs.Values.Sum(r => (r.Progress?.Running ?? 0) * r.Job.Spec.Resources.MemoryBytes);
            // Requests are not enforced locally: what a scheduler may add is what this machine's cores leave.
            return new BackendCapacity(running, cpu, memory, Math.Max(0, Environment.ProcessorCount - running));
        }
    }

    /// <summary>The local backend writes to the host's store, whatever the spec's results uri says.</summary>
    public string? ResultsStoreOf(BatchJob job, string? hostStore) => storeRoot;

    public async Task<BackendProgress> AdvanceAsync(BackendRun run, BackendCheckpoint checkpoint, CancellationToken cancellation)
    {
        var job = run.Job ?? throw new ArgumentException("a run to advance needs its BatchJob", nameof(run));
        var key = Key(run);
        if (!run.AllowSubmit && !_runs.ContainsKey(key))
        {
            // Nothing runs for it here and nothing new may start: what the store recorded of it, if anything.
            return Recorded(job, run.RunId) ?? new BackendProgress(RunPhase.Pending, job.Spec.Completions, 0, 0, 0, null, null, null, Dispatched: false,
                "NotStarted", "nothing of this run runs here, and starting it was not allowed", null, null, null, TimeSpan.Zero);
        }

        var parallelism = run.ParallelismNow(job);
        if (parallelism == 0 && !_runs.ContainsKey(key))
        {
            return new BackendProgress(RunPhase.Pending, job.Spec.Completions, 0, 0, 0, null, null, null, Dispatched: false,
                BackendReasons.Queued, "waiting in its queue for room: no process starts until an index may", null, null, null, _longPoll);
        }

        var local = _runs.GetOrAdd(key, _ => Start(job, parallelism, run.Indexes));
        local.Limit.Limit = parallelism;
        // Waits for the end a little, so a host following the run learns of it at once and is not polling.
        await Task.WhenAny(local.Task, Task.Delay(_longPoll, time, CancellationToken.None)).ConfigureAwait(false);
        if (!local.Task.IsCompleted)
        {
            return Running(job, local);
        }

        _runs.TryRemove(key, out _);
        var report = await local.Task.ConfigureAwait(false);
        return Finished(job, report);
    }

    public async Task<BackendProgress> CancelAsync(BackendRun run, string reason, CancellationToken cancellation)
    {
        if (_runs.TryRemove(Key(run), out var local))
        {
            await local.Stop.CancelAsync().ConfigureAwait(false);
            var report = await local.Task.ConfigureAwait(false);
            return Finished(local.Job, report) with { Phase = RunPhase.Cancelled };
        }

        // Not run by this host: a runner that died may have left processes; they go too.
        if (run.Job is { } job)
        {
            LocalExecutor.KillLeftovers(storeRoot, job.Metadata.Name, run.RunId);
        }

        return new BackendProgress(RunPhase.Cancelled, run.Job?.Spec.Completions ?? 0, 0, 0, 0, null, null, time.GetUtcNow(), Dispatched: true, "", "", null, null, null, TimeSpan.Zero);
    }

    public async Task<BackendRelease> ReleaseAsync(BackendRun run, string reason, CancellationToken cancellation)
    {
        await CancelAsync(run, reason, cancellation).ConfigureAwait(false);
        return BackendRelease.Done;
    }

    private LocalRun Start(BatchJob job, int parallelism, IndexSelection indexes)
    {
        var stop = CancellationTokenSource.CreateLinkedTokenSource(hostStopping);
        var local = new LocalRun(job, stop, time.GetUtcNow(), new ConcurrencyLimit(parallelism));
        var rerun = indexes.IsAll ? null : IndexRanges.Parse(indexes.Ranges);
        local.Task = Task.Run(() => executor.RunAsync(job, progress => local.Progress = progress, stop.Token, local.Limit, rerun), CancellationToken.None);
        return local;
    }

    /// <summary>A run this host does not run now, as its store recorded it (null: the store has never seen it).</summary>
    private BackendProgress? Recorded(BatchJob job, string runId)
    {
        if (!File.Exists(Path.Combine(storeRoot, State.RunStateStore.FileName)))
        {
            return null;
        }

        using var state = State.RunStateStore.Open(storeRoot);
        if (state.FindRun(runId) is not { } record)
        {
            return null;
        }

        var failed = state.FailedIndexes(runId, int.MaxValue);
        var phase = record.Phase == RunPhase.Running && !LocalExecutor.HasLiveRunner(storeRoot, runId) ? RunPhase.Cancelled : record.Phase;
        return new BackendProgress(
            phase, record.Completions, record.Succeeded, record.Failed, 0, failed.Count == 0 ? null : IndexRanges.Format(failed.Select(f => f.Index)),
            record.StartedAt, record.FinishedAt, Dispatched: true, "Recorded", $"as the store at {storeRoot} recorded it", null, record.Reason, null, TimeSpan.Zero)
        {
            JobName = $"{job.Metadata.Name}-{runId}",
            Failures = failed.Take(50).Select(f => new FailedIndex(f.Index, f.Attempts, f.LastReason)).ToList(),
        };
    }

    private BackendProgress Running(BatchJob job, LocalRun local)
    {
        var progress = local.Progress;
        return new BackendProgress(
            progress is null || progress.Running == 0 && progress.Succeeded == 0 && progress.Failed == 0 ? RunPhase.Pending : RunPhase.Running,
            progress?.Total ?? job.Spec.Completions, progress?.Succeeded ?? 0, progress?.Failed ?? 0, progress?.Running ?? 0, null,
            local.StartedAt, null, Dispatched: true, "ProcessesStarted", $"{job.Spec.Completions} indexes as local processes, {local.Limit.Limit} at a time",
            null, null, null, TimeSpan.Zero)
        {
            JobName = $"{job.Metadata.Name}-{RunIdentity.For(job)}",
            Runtimes = progress is null ? null : Core.Scheduling.RuntimeSummary.Of(progress.RecentRuntimes()),
        };
    }

    private BackendProgress Finished(BatchJob job, RunReport report)
    {
        var failedIndexes = report.FailedIndexes.Count == 0 ? null : IndexRanges.Format(report.FailedIndexes.Select(f => f.Index));
        var now = time.GetUtcNow();
        return new BackendProgress(
            report.Phase, report.Total, report.Succeeded, report.Failed, 0, failedIndexes, now - report.Duration, now,
            Dispatched: true, "ProcessesStarted", $"{report.Total} indexes as local processes, {job.Spec.Parallelism} at a time",
            report.RunnerFailed ? BackendReasons.RunnerFailed : report.Phase == RunPhase.Failed ? "IndexesFailed" : null,
            report.Reason, null, TimeSpan.Zero)
        {
            JobName = $"{job.Metadata.Name}-{report.RunId}",
            Failures = report.FailedIndexes.Select(f => new FailedIndex(f.Index, f.Attempts, f.LastReason)).ToList(),
            Summary = string.Create(CultureInfo.InvariantCulture, $"{report.AttemptsStarted} attempts in {DurationText.Format(report.Duration)}")
                + (report.Reused > 0 ? string.Create(CultureInfo.InvariantCulture, $", {report.Reused} indexes reused from earlier runs") : ""),
        };
    }

    private static string Key(BackendRun run) => $"{run.Namespace}/{run.Name}/{run.RunId}";

    private sealed class LocalRun(BatchJob job, CancellationTokenSource stop, DateTimeOffset startedAt, ConcurrencyLimit limit)
    {
        /// <summary>Attempts that may go at once: the spec's parallelism within the queue's allowance, followed on every call.</summary>
        public ConcurrencyLimit Limit { get; } = limit;

        public BatchJob Job { get; } = job;
        public CancellationTokenSource Stop { get; } = stop;
        public DateTimeOffset StartedAt { get; } = startedAt;
        public Task<RunReport> Task { get; set; } = null!;

        /// <summary>The executor's live counters, once it knows what is left to do.</summary>
        public RunProgress? Progress { get => Volatile.Read(ref _progress); set => Volatile.Write(ref _progress, value); }

        private RunProgress? _progress;
    }
}
