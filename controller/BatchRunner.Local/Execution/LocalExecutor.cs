using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Core.Sweeps;
using BatchRunner.Local.State;
using BatchRunner.Store;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Local.Execution;

/// <summary>Settings of the embedded default backend.</summary>
public sealed record LocalRunOptions
{
    /// <summary>The store root: state database, locks and the results layout.</summary>
    public required string StoreRoot { get; init; }

    /// <summary>Where each index's command runs; relative paths in the command resolve against it.</summary>
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;

    /// <summary>How often a running run checks whether <c>batchrunner cancel</c> asked it to stop.</summary>
    public TimeSpan CancelPollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// How often the run's state transitions are committed, as one group (see <see cref="GroupCommitWriter"/>); what a
    /// kill -9 loses of the last interval is recovered from the ledger rows on disk.
    /// </summary>
    public TimeSpan StateCommitInterval { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>How attempts' processes are started: posix_spawn on Linux, .NET's Process elsewhere.</summary>
    public IProcessLauncher Launcher { get; init; } = ProcessLauncher.Default;

    /// <summary>
    /// Each attempt in a cgroup of its own and able to write only its own output folder of the store, where the
    /// machine allows it (root on Linux; see <see cref="AttemptIsolation"/>).
    /// </summary>
    public bool IsolateAttempts { get; init; } = true;
}

/// <summary>How an invocation of a run ended.</summary>
public sealed record RunReport(
    string RunId,
    RunPhase Phase,
    string? Reason,
    int Total,
    int Succeeded,
    int Failed,
    int AttemptsStarted,
    IReadOnlyList<IndexRecord> FailedIndexes,
    TimeSpan Duration)
{
    /// <summary>The runner itself failed (it could not write its state or its store: a full disk, say), not the job's indexes.</summary>
    public bool RunnerFailed { get; init; }

    /// <summary>Indexes that took an earlier identical point's result instead of running.</summary>
    public int Reused { get; init; }
}

/// <summary>Another process is running the same run right now.</summary>
public sealed class RunBusyException(string message) : Exception(message);

/// <summary>
/// Runs a BatchJob's indexes as local processes: at most <c>parallelism</c> at once, each attempt with its
/// timeout, retries with exponential backoff, a deadline on the whole invocation, and cancellation. Progress is
/// recorded in the embedded state as it happens, so a run that was killed resumes with the same spec and reruns
/// only the indexes that had not succeeded; the results layout on disk is the ledger of record.
/// </summary>
public sealed class LocalExecutor(LocalRunOptions options, TimeProvider time, ILogger<LocalExecutor> log)
{
    public const string BackendName = "local";
    private const int FailedIndexesReported = 50;

    private readonly LocalResultsStore _store = new(options.StoreRoot);

    /// <summary>Fails fast, before anything runs, when the command cannot be found.</summary>
    public static void CheckCommandExists(BatchJob job, string workingDirectory)
    {
        var program = job.Spec.Command[0];
        var found = program.Contains('/', StringComparison.Ordinal)
            ? File.Exists(Path.Combine(workingDirectory, program))
            : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
                .Any(folder => File.Exists(Path.Combine(folder, program)));
        if (!found)
        {
            var where = program.Contains('/', StringComparison.Ordinal) ? $"in {workingDirectory}" : "on PATH";
            throw new InvalidSpecException([new SpecError("spec.command[0]", $"\"{program}\" was not found {where}")]);
        }
    }

    /// <summary>Runs (or resumes) the run of this job until every index has succeeded or failed, or it is stopped.</summary>
    /// <param name="observe">Receives the live counters once the run knows what is left to do.</param>
    /// <param name="limit">Attempts that may go at once, changeable while the run goes; null: the spec's parallelism.</param>
    /// <param name="rerun">
    /// Indexes to run again, whatever they came to (each gets new attempts with a fresh retry budget); the others are
    /// left as they are. Null: what has not succeeded runs.
    /// </param>
    public async Task<RunReport> RunAsync(BatchJob job, Action<RunProgress>? observe, CancellationToken cancellation, ConcurrencyLimit? limit = null, IReadOnlyCollection<int>? rerun = null)
    {
        CheckCommandExists(job, options.WorkingDirectory);
        if (job.Spec.Resources != ResourceRequests.Default)
        {
            // Never silently ignored: this backend runs each index as an ordinary process, without cgroup limits.
            log.LogWarning(
                "spec.resources (cpu {Cpu}, memory {Memory}) are not enforced by the local backend: each index runs as an ordinary process within this machine's limits ({Cores} cores); they are requests on kubernetes and aws-batch",
                job.Spec.Resources.Cpu, job.Spec.Resources.Memory, Environment.ProcessorCount);
        }

        var runId = RunIdentity.For(job);
        using var runLock = AcquireRunLock(runId, job.Metadata.Name);
        using var state = RunStateStore.Open(options.StoreRoot);
        using var scope = log.BeginScope(new Dictionary<string, object> { ["BatchJob"] = job.Metadata.Name, ["RunId"] = runId });
        var run = new Invocation(this, job, runId, state, log, limit, rerun);
        return await run.ExecuteAsync(observe, cancellation).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether a live process runs <paramref name="runId"/> in the store at <paramref name="storeRoot"/>: its runner
    /// holds the run's lock until it exits, however it exits (the kernel drops the lock of a killed process), so a run
    /// recorded as Running whose lock is free has lost its runner.
    /// </summary>
    public static bool HasLiveRunner(string storeRoot, string runId)
    {
        var path = Path.Combine(Path.GetFullPath(storeRoot), ".locks", runId + ".lock");
        if (!File.Exists(path))
        {
            return false;
        }

        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>Kills what the attempts of a run whose runner died left running (in their cgroups or by their output folders); how many.</summary>
    public static int KillLeftovers(string storeRoot, string batchJob, string runId) =>
        AttemptIsolation.KillLeftovers(storeRoot, runId)
        + ProcessIdentity.KillProcessesWorkingUnder(Path.Combine(storeRoot, StoreLayout.RunPrefix(batchJob, runId))).Count;

    private FileStream AcquireRunLock(string runId, string name)
    {
        var folder = Path.Combine(_store.Root, ".locks");
        Directory.CreateDirectory(folder);
        try
        {
            // FileShare.None takes an advisory lock that the kernel drops when the process dies, even by kill -9.
            return new FileStream(Path.Combine(folder, runId + ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new RunBusyException($"run {runId} of {name} is already running in another process");
        }
    }

    /// <summary>One invocation of a run: its counters, its schedule, its stop reasons.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "ExecuteAsync disposes the writer and the command launcher it creates")]
    private sealed class Invocation(LocalExecutor owner, BatchJob job, string runId, RunStateStore state, ILogger log, ConcurrencyLimit? limit, IReadOnlyCollection<int>? rerun)
    {
        private readonly SweepPlan _plan = new(job.Spec);
        private readonly string _name = job.Metadata.Name;
        private readonly IReadOnlyList<string> _argv = [.. job.Spec.Command, .. job.Spec.Args];
        private readonly TimeSpan? _timeout = job.Spec.TimeoutSeconds is { } t ? TimeSpan.FromSeconds(t) : null;
        private readonly Channel<int> _ready = Channel.CreateUnbounded<int>();
        private readonly List<Task> _retryTimers = [];
        private int[] _attemptsUsed = [];
        private int[] _attemptsThisInvocation = [];
        private int _outstanding;
        private int _attemptsStarted;
        private RunProgress _progress = null!;
        private volatile bool _cancelRequested;
        private CancellationToken _deadline;
        private Exception? _fault;
        private ICommandLauncher _command = null!;
        private AttemptIsolation? _isolation;
        private GroupCommitWriter _writer = null!;
        private string _program = "";
        private int _reused;

        // Indexes that had an earlier result which could not be taken (deleted or changed): their ledger rows say so.
        private readonly ConcurrentDictionary<int, string> _reuseRefused = new();

        private TimeProvider Time => owner.TimeSource;

        public async Task<RunReport> ExecuteAsync(Action<RunProgress>? observe, CancellationToken cancellation)
        {
            var startedAt = Time.GetUtcNow();
            var runFolderExisted = Directory.Exists(owner._store.PathOf(StoreLayout.RunPrefix(_name, runId)));

            // 1. Record this runner as the run's owner; a new run is created here.
            state.BeginInvocation(runId, job.Metadata.Namespace, _name, RunIdentity.SpecJson(job), _plan.Count, Environment.ProcessId, startedAt);

            // 2. Settle what an earlier runner left behind: kill its orphans, adopt what finished.
            RecoverUnfinishedAttempts();
            if (runFolderExisted)
            {
                KillUnrecordedOrphans();
            }

            // 3. What is left to do, and which attempt number each index continues from. An attempt the state never
            //    heard of (its group commit was lost with the runner) but whose ledger row on disk says it succeeded
            //    is adopted: the disk is the record.
            var indexes = state.LoadIndexes(runId);
            _attemptsUsed = new int[_plan.Count];
            _attemptsThisInvocation = new int[_plan.Count];
            var todo = new List<int>();
            var adopted = new List<StateTransition>();
            var chosen = rerun is null ? null : new HashSet<int>(rerun);
            for (var i = 0; i < _plan.Count; i++)
            {
                indexes.TryGetValue(i, out var record);
                if (chosen is not null)
                {
                    // A rerun: exactly the chosen indexes get new attempts, numbered after every earlier one.
                    if (chosen.Contains(i))
                    {
                        _attemptsUsed[i] = Math.Max(record?.Attempts ?? 0, runFolderExisted ? owner._store.HighestAttemptOnDisk(_name, runId, i) : 0);
                        todo.Add(i);
                    }

                    continue;
                }

                if (record?.Phase == IndexPhase.Succeeded)
                {
                    continue;
                }

                var recorded = record?.Attempts ?? 0;
                var onDisk = runFolderExisted ? owner._store.HighestAttemptOnDisk(_name, runId, i) : 0;
                if (onDisk > recorded && owner._store.ReadLedgerRow(_name, runId, i, onDisk) is { } row && row.Status == AttemptOutcome.Succeeded.ToLedger())
                {
                    adopted.Add(StateTransition.Finished(runId, i, onDisk, AttemptOutcome.Succeeded, IndexPhase.Succeeded, null, row.StartedAt, row.FinishedAt));
                    continue;
                }

                _attemptsUsed[i] = Math.Max(recorded, onDisk);
                todo.Add(i);
            }

            if (adopted.Count > 0)
            {
                state.Record(adopted);
                log.LogInformation("Adopted {Count} succeeded attempts from their ledger rows; the state had not recorded them", adopted.Count);
            }

            // 3b. Indexes an earlier run of the namespace computed already may take that result instead of running:
            //     looked up and taken beside the workers (so the first attempt waits for neither).
            _program = PointReuse.ProgramOf(job, owner.Options.WorkingDirectory);
            var lookForPoints = chosen is null && job.Spec.ReusesResults && todo.Count > 0 && state.HasPoints(job.Metadata.Namespace);

            var failedBefore = chosen is null ? 0 : indexes.Values.Count(i => i.Phase == IndexPhase.Failed && !chosen.Contains(i.Index));
            var succeededBefore = chosen is null
                ? _plan.Count - todo.Count
                : indexes.Values.Count(i => i.Phase == IndexPhase.Succeeded && !chosen.Contains(i.Index));
            _progress = new RunProgress(_plan.Count, succeededBefore, startedAt, failedBefore);
            observe?.Invoke(_progress);
            WriteManifest(RunPhase.Running, null, startedAt, null);
            log.LogInformation(
                "{Verb} {BatchJob} run {RunId}: {Todo} of {Total} indexes to run, parallelism {Parallelism}",
                chosen is null ? "Running" : "Rerunning", _name, runId, todo.Count, _plan.Count, job.Spec.Parallelism);

            // 4. Run the schedule until it drains or something stops it; whatever its attempts left running goes with it.
            using var deadline = job.Spec.DeadlineSeconds is { } d ? new CancellationTokenSource(TimeSpan.FromSeconds(d), Time) : new CancellationTokenSource();
            _deadline = deadline.Token;
            using var userStop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(userStop.Token, deadline.Token);
            using var watcherStop = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            var watcher = WatchForCancelRequestAsync(userStop, watcherStop.Token);
            ProcessContainment.RunStarted();
            using (_isolation = OpenIsolation())
            using (_writer = new GroupCommitWriter(state, owner.Options.StateCommitInterval))
            using (_command = owner.Options.Launcher.Prepare(_argv, owner.Options.WorkingDirectory, Time))
            {
                try
                {
                    await RunScheduleAsync(todo, lookForPoints, stop).ConfigureAwait(false);
                }
                finally
                {
                    var left = (_isolation?.EndRun() ?? 0) + ProcessContainment.RunEnded(owner._store.PathOf(StoreLayout.RunPrefix(_name, runId)));
                    if (left > 0)
                    {
                        log.LogWarning("Killed {Count} process(es) left running by attempts of {BatchJob} run {RunId}", left, _name, runId);
                    }
                }

                try
                {
                    _writer.Flush();
                }
                catch (IOException e)
                {
                    log.LogError(e, "Runner error in {BatchJob} run {RunId}: its state could not be written", _name, runId);
                    Interlocked.CompareExchange(ref _fault, e, null);
                }
            }

            await watcherStop.CancelAsync().ConfigureAwait(false);
            await watcher.ConfigureAwait(false);

            // 5. Derive the outcome from the recorded state, and record it.
            var finishedAt = Time.GetUtcNow();
            var final = state.LoadIndexes(runId);
            var succeeded = final.Values.Count(i => i.Phase == IndexPhase.Succeeded);
            var failed = final.Values.Count(i => i.Phase == IndexPhase.Failed);
            var (phase, reason) = Outcome(cancellation.IsCancellationRequested || _cancelRequested, deadline.IsCancellationRequested, succeeded, failed);
            if (phase == RunPhase.Succeeded && succeeded < _plan.Count)
            {
                // A rerun of some indexes of a run that never finished the others: it is still unfinished.
                (phase, reason) = (RunPhase.Cancelled, $"Incomplete: {_plan.Count - succeeded} of {_plan.Count} indexes have not run; `batchrunner run` of its spec runs them");
            }

            state.FinishRun(runId, phase, reason, finishedAt);
            WriteManifest(phase, reason, startedAt, finishedAt, succeeded, failed);
            log.LogInformation(
                "Run {RunId} of {BatchJob} {Phase}: {Succeeded} succeeded, {Failed} failed of {Total} in {Seconds:F1}s{Reason}",
                runId, _name, phase.ToString(), succeeded, failed, _plan.Count, (finishedAt - startedAt).TotalSeconds, reason is null ? "" : $" ({reason})");
            return new RunReport(
                runId, phase, reason, _plan.Count, succeeded, failed, _attemptsStarted,
                state.FailedIndexes(runId, FailedIndexesReported), finishedAt - startedAt) { RunnerFailed = _fault is not null, Reused = _reused };
        }

        /// <summary>
        /// Feeds the schedule, looking for earlier results on the way: an index that never ran here and whose point an
        /// earlier run of the namespace recorded goes to <paramref name="found"/> to take a copy of that result; every
        /// other index goes to the workers at once, so they start after one lookup, not after all of them or the copies.
        /// </summary>
        private void FeedLookingForPoints(List<int> todo, ChannelWriter<(int Index, PointKey Key, IReadOnlyList<PointRecord> Candidates)> found, CancellationTokenSource stop)
        {
            try
            {
                foreach (var index in todo)
                {
                    if (stop.IsCancellationRequested)
                    {
                        // Stopping: what is not fed stays pending, found again by the next invocation.
                        return;
                    }

                    var key = PointKey.For(job, _plan.For(index), _program);
                    var candidates = _attemptsUsed[index] == 0 ? state.FindPoints(job.Metadata.Namespace, key.Hash, runId) : [];
                    if (candidates.Count == 0)
                    {
                        _ready.Writer.TryWrite(index);
                    }
                    else
                    {
                        found.TryWrite((index, key, candidates));
                    }
                }
            }
            finally
            {
                found.TryComplete();
            }
        }

        /// <summary>
        /// Takes the earlier results found, beside the workers: an index whose source is as it was succeeds with a copy
        /// of it; one whose source was deleted or changed goes to the workers to run, its ledger row saying why.
        /// </summary>
        private async Task ReuseFoundAsync(ChannelReader<(int Index, PointKey Key, IReadOnlyList<PointRecord> Candidates)> found, CancellationTokenSource stop)
        {
            await foreach (var (index, key, candidates) in found.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                if (stop.IsCancellationRequested)
                {
                    continue;
                }

                var now = Time.GetUtcNow();
                var target = LedgerRow.For(job, runId, _plan.For(index), 1, AttemptOutcome.Succeeded, now, now, BackendName) with { PointKey = key.Hash };
                LedgerRow? row;
                string? refused;
                try
                {
                    (row, refused) = PointReuse.TryReuse(owner._store, candidates, target, now);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
                {
                    // The earlier result could not be read or copied: the index runs instead, saying why.
                    (row, refused) = (null, $"the earlier result of this point could not be taken ({e.Message}), so the index ran");
                }

                if (row is null)
                {
                    _reuseRefused[index] = refused!;
                    _ready.Writer.TryWrite(index);
                    continue;
                }

                _attemptsUsed[index] = 1;
                var source = candidates.First(c => PointReuse.SourceOf(c) == row.ReusedFrom);
                _writer.Record(StateTransition.Finished(runId, index, 1, AttemptOutcome.Succeeded, IndexPhase.Succeeded, null, now, now) with
                {
                    Point = new PointRecord(job.Metadata.Namespace, key.Hash, key.FieldsText, source.Digest, _name, runId, index, 1),
                });
                Interlocked.Increment(ref _reused);
                _progress.IndexSucceeded();
                IndexDone();
            }
        }

        /// <summary>Runs a part of the schedule beside the workers; if the runner itself breaks there, the run stops rather than lose track.</summary>
        private async Task Guarded(Func<Task> part, CancellationTokenSource stop)
        {
            try
            {
                await part().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                log.LogError(e, "Runner error in {BatchJob} run {RunId} while taking earlier results; stopping the run", _name, runId);
                Interlocked.CompareExchange(ref _fault, e, null);
                await stop.CancelAsync().ConfigureAwait(false);
            }
        }

        private (RunPhase Phase, string? Reason) Outcome(bool cancelled, bool deadlineExceeded, int succeeded, int failed)
        {
            if (_fault is not null)
            {
                return (RunPhase.Failed, $"RunnerError: {_fault.Message}");
            }

            if (cancelled)
            {
                return (RunPhase.Cancelled, "Cancelled: stopped on request; run the same spec again to resume");
            }

            if (deadlineExceeded)
            {
                return (RunPhase.Failed, $"DeadlineExceeded: spec.deadlineSeconds ({job.Spec.DeadlineSeconds}) passed with {_plan.Count - succeeded - failed} indexes unfinished");
            }

            return failed > 0
                ? (RunPhase.Failed, $"IndexesFailed: {failed} of {_plan.Count} indexes failed after their retries")
                : (RunPhase.Succeeded, null);
        }

        private async Task RunScheduleAsync(List<int> todo, bool lookForPoints, CancellationTokenSource stop)
        {
            _outstanding = todo.Count;
            if (_outstanding == 0)
            {
                return;
            }

            var feeder = Task.CompletedTask;
            if (!lookForPoints)
            {
                foreach (var index in todo)
                {
                    _ready.Writer.TryWrite(index);
                }
            }
            else
            {
                var found = Channel.CreateUnbounded<(int, PointKey, IReadOnlyList<PointRecord>)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
                feeder = Task.WhenAll(
                    Task.Run(() => Guarded(() => { FeedLookingForPoints(todo, found.Writer, stop); return Task.CompletedTask; }, stop), CancellationToken.None),
                    Task.Run(() => Guarded(() => ReuseFoundAsync(found.Reader, stop), stop), CancellationToken.None));
            }

            var workers = Enumerable.Range(0, Math.Min(job.Spec.Parallelism, _outstanding))
                .Select(_ => Task.Run(() => WorkerAsync(stop)))
                .ToArray();
            await Task.WhenAll(workers).ConfigureAwait(false);
            await feeder.ConfigureAwait(false);
            if (_reused > 0)
            {
                log.LogInformation("Reused {Count} indexes of {BatchJob} run {RunId} from earlier runs of the same points", _reused, _name, runId);
            }

            Task[] timers;
            lock (_retryTimers)
            {
                timers = [.. _retryTimers];
            }

            await Task.WhenAll(timers).ConfigureAwait(false);
        }

        private async Task WorkerAsync(CancellationTokenSource stop)
        {
            try
            {
                while (await _ready.Reader.WaitToReadAsync(stop.Token).ConfigureAwait(false))
                {
                    while (!stop.IsCancellationRequested && limit is null && _ready.Reader.TryRead(out var index))
                    {
                        await RunIndexOnceAsync(index, stop.Token).ConfigureAwait(false);
                    }

                    // Within a changeable limit: a place first, then an index (none left: the place goes back).
                    while (!stop.IsCancellationRequested && limit is not null)
                    {
                        await limit.EnterAsync(stop.Token).ConfigureAwait(false);
                        try
                        {
                            if (!_ready.Reader.TryRead(out var index))
                            {
                                break;
                            }

                            await RunIndexOnceAsync(index, stop.Token).ConfigureAwait(false);
                        }
                        finally
                        {
                            limit.Exit();
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // Stopping: what is not running stays pending for the next invocation.
            }
            catch (Exception e)
            {
                // The runner itself broke (say, the disk is full): stop the run rather than lose track of it.
                log.LogError(e, "Runner error in {BatchJob} run {RunId}; stopping the run", _name, runId);
                Interlocked.CompareExchange(ref _fault, e, null);
                await stop.CancelAsync().ConfigureAwait(false);
            }
        }

        private async Task RunIndexOnceAsync(int index, CancellationToken stop)
        {
            var (outcome, phase) = await RunAttemptAsync(index, stop).ConfigureAwait(false);
            switch (phase)
            {
                case IndexPhase.Succeeded:
                    _progress.IndexSucceeded();
                    IndexDone();
                    break;
                case IndexPhase.Failed:
                    _progress.IndexFailed();
                    IndexDone();
                    break;
                case IndexPhase.Pending when outcome != AttemptOutcome.Interrupted:
                    ScheduleRetry(index, stop);
                    break;
            }
        }

        private void IndexDone()
        {
            if (Interlocked.Decrement(ref _outstanding) == 0)
            {
                _ready.Writer.TryComplete();
            }
        }

        private void ScheduleRetry(int index, CancellationToken stop)
        {
            var delay = job.Spec.Retry.BackoffBefore(_attemptsThisInvocation[index] + 1);
            _progress.BackoffStarted();
            var timer = Task.Run(async () =>
            {
                try
                {
                    await Task.Delay(delay, Time, stop).ConfigureAwait(false);
                    _ready.Writer.TryWrite(index);
                }
                catch (OperationCanceledException)
                {
                    // The run is stopping; the index stays pending.
                }
                finally
                {
                    _progress.BackoffEnded();
                }
            }, CancellationToken.None);
            lock (_retryTimers)
            {
                _retryTimers.Add(timer);
            }
        }

        private AttemptIsolation? OpenIsolation()
        {
            if (!owner.Options.IsolateAttempts || owner.Options.Launcher is not PosixSpawnLauncher)
            {
                return null;
            }

            var isolation = new AttemptIsolation(owner.Options.StoreRoot, runId);
            foreach (var missing in isolation.Unavailable)
            {
                log.LogDebug("Attempts of {BatchJob} run with {Missing}", _name, missing);
            }

            return isolation;
        }

        private string? CgroupFor(int index, int attempt)
        {
            try
            {
                return _isolation?.CgroupFor(index, attempt);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log.LogWarning("Index {Index} attempt {Attempt} runs without a cgroup of its own: {Error}", index, attempt, e.Message);
                return null;
            }
        }

        private async Task<(AttemptOutcome Outcome, IndexPhase Phase)> RunAttemptAsync(int index, CancellationToken stop)
        {
            var attempt = ++_attemptsUsed[index];
            Interlocked.Increment(ref _attemptsStarted);
            var assignment = _plan.For(index);
            var attemptFolder = owner._store.AttemptFolder(_name, runId, index, attempt);
            var outputFolder = Path.Combine(attemptFolder, StoreLayout.OutputFolder);
            var logsFolder = Path.Combine(attemptFolder, StoreLayout.LogsFolder);
            AttemptFiles.CreateOutputFolder(outputFolder);
            var environment = WorkloadEnvironment.For(job, runId, assignment, outputFolder);
            var startedAt = Time.GetUtcNow();

            _progress.AttemptStarted();
            ProcessResult result;
            try
            {
                result = await _command.RunAsync(
                    new AttemptLaunch(environment, logsFolder, _timeout,
                        pid => _writer.Record(StateTransition.Started(runId, index, attempt, pid, ProcessIdentity.StartTicks(pid), startedAt)),
                        _isolation,
                        CgroupFor(index, attempt)),
                    stop).ConfigureAwait(false);
            }
            finally
            {
                _progress.AttemptEnded();
            }

            var finishedAt = Time.GetUtcNow();
            var (outcome, reason) = Classify(result);
            if (outcome == AttemptOutcome.Succeeded)
            {
                _progress.RuntimeObserved(finishedAt - startedAt);
            }

            if (result.Stragglers > 0)
            {
                // What the attempt left running (background or detached children) went with it: the ledger says so.
                var killed = string.Create(CultureInfo.InvariantCulture, $"killed {result.Stragglers} process(es) the attempt left running when it ended");
                reason = reason is null ? killed : $"{reason}; {killed}";
                log.LogWarning("Index {Index} attempt {Attempt}: {Killed}", index, attempt, killed);
            }

            if (outcome.CountsAgainstRetries())
            {
                _attemptsThisInvocation[index]++;
            }

            var phase = outcome switch
            {
                AttemptOutcome.Succeeded => IndexPhase.Succeeded,
                AttemptOutcome.Interrupted => IndexPhase.Pending,
                _ when _attemptsThisInvocation[index] < job.Spec.Retry.Attempts => IndexPhase.Pending,
                _ => IndexPhase.Failed,
            };

            // What the output holds (rows, malformed lines, a note), as the results wrapper records it on the clusters:
            // the indexes table says why an index has no rows. Read line by line, once per attempt.
            var summary = LocalResultsStore.InspectOutput(outputFolder, job.Spec.Results.Format);
            if (_reuseRefused.TryGetValue(index, out var notReused))
            {
                reason = reason is null ? notReused : $"{reason}; {notReused}";
            }

            var key = PointKey.For(job, assignment, _program);
            var row = summary.ApplyTo(LedgerRow.For(job, runId, assignment, attempt, outcome, startedAt, finishedAt, BackendName) with
            {
                ExitCode = result.ExitCode,
                Reason = reason,
                PointKey = key.Hash,
            });
            AttemptFiles.WriteAtomically(Path.Combine(attemptFolder, StoreLayout.LedgerFile), row.ToJsonUtf8());
            // A succeeded attempt is a point later runs may reuse, with the digest of what it left.
            var point = outcome == AttemptOutcome.Succeeded && OutputFolder.Digest(outputFolder) is { } digest
                ? new PointRecord(job.Metadata.Namespace, key.Hash, key.FieldsText, digest, _name, runId, index, attempt)
                : null;
            _writer.Record(StateTransition.Finished(runId, index, attempt, outcome, phase, reason, startedAt, finishedAt) with { Point = point });

            if (outcome == AttemptOutcome.Succeeded)
            {
                log.LogDebug("Index {Index} attempt {Attempt} succeeded in {Seconds:F2}s", index, attempt, (finishedAt - startedAt).TotalSeconds);
            }
            else if (outcome != AttemptOutcome.Interrupted)
            {
                log.LogWarning(
                    "Index {Index} attempt {Attempt} {Outcome}: {Reason}{Next}",
                    index, attempt, outcome.ToLedger(), reason, phase == IndexPhase.Failed ? "; no attempts left" : "; will retry");
            }

            return (outcome, phase);
        }

        private (AttemptOutcome, string?) Classify(ProcessResult result) => result switch
        {
            { StartFailed: true } => (AttemptOutcome.FailedToStart, result.StartError),
            { TimedOut: true } => (AttemptOutcome.TimedOut,
                string.Create(CultureInfo.InvariantCulture, $"timed out after {job.Spec.TimeoutSeconds}s (spec.timeoutSeconds); its process tree was killed")),
            { Interrupted: true } => (AttemptOutcome.Interrupted, _deadline.IsCancellationRequested && !_cancelRequested
                ? "interrupted: the run's deadline (spec.deadlineSeconds) passed"
                : "interrupted: the run was cancelled"),
            { ExitCode: 0 } => (AttemptOutcome.Succeeded, null),
            { ExitCode: null } => (AttemptOutcome.Failed, $"the process ended but {result.StderrTail}"),
            _ => (AttemptOutcome.Failed, ExitDescription.Describe(result.ExitCode.Value, result.StderrTail, result.Signal)),
        };

        private void RecoverUnfinishedAttempts()
        {
            foreach (var orphan in state.UnfinishedAttempts(runId))
            {
                if (orphan.Pid is { } pid && ProcessIdentity.KillIfStillRunning(pid, orphan.PidStartTicks))
                {
                    log.LogWarning("Killed orphaned process {Pid} of index {Index} attempt {Attempt}, left by a runner that died", pid, orphan.Index, orphan.Attempt);
                }

                // The ledger on disk is the record: an attempt that finished but was not marked keeps its outcome.
                var row = owner._store.ReadLedgerRow(_name, runId, orphan.Index, orphan.Attempt);
                var outcome = row?.Status == AttemptOutcome.Succeeded.ToLedger() ? AttemptOutcome.Succeeded : AttemptOutcome.Interrupted;
                var now = Time.GetUtcNow();
                if (row is null)
                {
                    owner._store.WriteLedgerRow(
                        LedgerRow.For(job, runId, _plan.For(orphan.Index), orphan.Attempt, AttemptOutcome.Interrupted, orphan.StartedAt, now, BackendName)
                        with { Reason = "interrupted: the runner stopped while this attempt ran" });
                }

                var phase = outcome == AttemptOutcome.Succeeded ? IndexPhase.Succeeded : IndexPhase.Pending;
                state.RecordAttemptFinished(runId, orphan.Index, orphan.Attempt, outcome, phase, row?.Reason ?? "interrupted", orphan.StartedAt, now);
            }
        }

        /// <summary>Processes of this run whose start the state never recorded (lost with the runner's last group commit).</summary>
        private void KillUnrecordedOrphans()
        {
            if (AttemptIsolation.KillLeftovers(owner.Options.StoreRoot, runId) is > 0 and var inCgroups)
            {
                log.LogWarning("Killed {Count} process(es) left in the cgroups of {BatchJob} run {RunId} by a runner that died", inCgroups, _name, runId);
            }

            var runFolder = owner._store.PathOf(StoreLayout.RunPrefix(_name, runId));
            foreach (var (pid, outputDir) in ProcessIdentity.KillProcessesWorkingUnder(runFolder))
            {
                log.LogWarning("Killed orphaned process {Pid} (output folder {OutputDir}), left by a runner that died", pid, outputDir);
            }
        }

        private async Task WatchForCancelRequestAsync(CancellationTokenSource userStop, CancellationToken stop)
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    await Task.Delay(owner.Options.CancelPollInterval, Time, stop).ConfigureAwait(false);
                    if (state.IsCancelRequested(runId))
                    {
                        log.LogInformation("Cancel requested for {BatchJob} run {RunId}", _name, runId);
                        _cancelRequested = true;
                        await userStop.CancelAsync().ConfigureAwait(false);
                        return;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // The run ended by itself.
            }
        }

        private void WriteManifest(RunPhase phase, string? reason, DateTimeOffset startedAt, DateTimeOffset? finishedAt, int? succeeded = null, int? failed = null) =>
            owner._store.WriteRunManifest(_name, runId, new RunManifest(
                _name, job.Metadata.Namespace, runId, BackendName, phase.ToString(), reason, _plan.Count, _plan.ParameterNames,
                succeeded, failed, startedAt, finishedAt, JsonDocument.Parse(RunIdentity.SpecJson(job)).RootElement));
    }

    private LocalRunOptions Options => options;

    private TimeProvider TimeSource => time;
}
