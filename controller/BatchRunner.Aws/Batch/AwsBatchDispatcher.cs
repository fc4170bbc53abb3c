using System.Globalization;
using BatchRunner.Aws.Protocol;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Aws.Batch;

/// <summary>Polling and patience of the dispatcher; shorter in tests.</summary>
public sealed record AwsBatchTimings(TimeSpan FirstPoll, TimeSpan MaxPoll, TimeSpan BlockedRetry, TimeSpan LostAfter)
{
    public static readonly AwsBatchTimings Default = new(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(60), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(10));
}

/// <summary>
/// Runs a BatchJob on AWS Batch (Fargate), level-based: each call observes what was submitted, submits what is
/// due, and returns the run's state for the caller to keep (<see cref="AwsBatchRunState"/>) with counts and phase.
/// <list type="bullet">
/// <item>Indexes go in array jobs (an array holds 2 to 10,000 children; a lone index is a plain job). Child
/// <c>i</c> of the array starting at index <c>s</c> runs index <c>s + i</c>: <c>BATCHRUNNER_INDEX_OFFSET=s</c>
/// in its container overrides, <c>AWS_BATCH_JOB_ARRAY_INDEX=i</c> from Batch; the results wrapper adds them.</item>
/// <item>Parallelism: AWS Batch has no per-array concurrency limit, so the sweep is cut into windows. With
/// <c>parallelism ≥ completions</c> everything is submitted at once (arrays of 10,000). Otherwise a window holds
/// a quarter of the parallelism (at least 1), and a window is submitted only while the indexes submitted and not
/// finished, plus the window, stay within <c>parallelism</c>; so at most <c>parallelism</c> indexes ever run at
/// once, and a straggler holds back at most a quarter of it.</item>
/// <item>Idempotent: an array's name is <c>NAME-RUNID-START</c>; before submitting one, ListJobs with a JOB_NAME
/// filter looks for it, so a controller killed between SubmitJob and recording the answer adopts the earlier
/// submission instead of making a second one.</item>
/// <item>SubmitJob calls share a token bucket (<see cref="SubmitRateLimiter"/>); DescribeJobs asks for 100 jobs
/// per call; polling slows down (to <see cref="AwsBatchTimings.MaxPoll"/>) while nothing changes.</item>
/// </list>
/// Errors AWS gives for what it will not do (access denied, an unknown queue, a bad request) and settings that
/// cannot work become an <see cref="AwsBatchProblem"/> on the progress; transient errors (already retried by the
/// client) are thrown for the caller to retry later.
/// </summary>
public sealed class AwsBatchDispatcher(
    IBatchApi api,
    AwsBatchOptions options,
    IRunSpecPublisher publisher,
    SubmitRateLimiter limiter,
    TimeProvider time,
    ILogger<AwsBatchDispatcher> log,
    AwsBatchTimings? timings = null)
{
    /// <summary>Children in one array job, at most (AWS Batch's limit).</summary>
    public const int MaxArraySize = 10_000;

    /// <summary>Failures kept with their reasons (the count and the ranges of failed indexes are complete).</summary>
    public const int FailuresKept = 20;

    /// <summary>Metadata key (label or annotation) asking for Fargate Spot: <c>batchrunner.io/capacity: spot</c>.</summary>
    public const string CapacityKey = "batchrunner.io/capacity";

    private const string FailedChild = "FAILED";

    private readonly AwsBatchTimings _timings = timings ?? AwsBatchTimings.Default;

    // Polls in a row that saw no change, per run, for the polling backoff. Kept here rather than in the run's state so
    // that a quiet poll changes nothing a door must write (the BatchJob's status would change on every poll).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _quietPolls = new(StringComparer.Ordinal);
    private readonly JobDefinitions _definitions = new(api, log);
    private readonly ILogger _log = log;

    public AwsBatchOptions Options => options;

    /// <summary>The deterministic name of the array (or job) holding the indexes from <paramref name="start"/>.</summary>
    public static string JobName(string batchJob, string runId, int start) =>
        string.Create(CultureInfo.InvariantCulture, $"{batchJob}-{runId}-{start}");

    /// <summary>Indexes per window: see the class remarks.</summary>
    public static int WindowSize(int completions, int parallelism) =>
        parallelism >= completions
            ? Math.Min(MaxArraySize, Math.Max(1, completions))
            : Math.Clamp((parallelism + 3) / 4, 1, MaxArraySize);

    /// <summary>Observes the run, submits what is due, and says where it stands.</summary>
    /// <param name="state">What the previous call returned (null at first).</param>
    /// <param name="checkpoint">Called after each submission with the state to keep, so a crash loses as little as possible.</param>
    /// <param name="allowSubmit">False when the spec changed after dispatch: what runs is followed, nothing new goes.</param>
    /// <param name="allowance">Indexes its queue lets run at once now (null: its parallelism); windows are cut to fit it.</param>
    /// <param name="rerun">A rerun the host asks for: its number and the indexes that get new attempts (taken once, when its number is new).</param>
    /// <param name="part">The run's indexes from First to End (exclusive) only, when its queue split the run across backends.</param>
    /// <param name="startLimit">At most this many of the run's indexes are ever submitted (what its budget covers); null: all.</param>
    public async Task<AwsBatchProgress> AdvanceAsync(
        BatchJob job,
        string runId,
        AwsBatchRunState? state,
        Func<AwsBatchRunState, CancellationToken, Task>? checkpoint,
        bool allowSubmit,
        int? allowance,
        CancellationToken cancellation,
        (int Number, IReadOnlyList<int> Indexes)? rerun = null,
        (int First, int End)? part = null,
        int? startLimit = null)
    {
        var run = state?.RunId == runId ? state.Clone() : new AwsBatchRunState { RunId = runId };
        if (part is { } given && run.PartEnd is null && run.Arrays.Count == 0 && run.WindowSize == 0)
        {
            // Recorded with the first state: the part a run was given stays its part.
            (run.PartStart, run.PartEnd, run.NextIndex) = (given.First, given.End, given.First);
        }

        if (rerun is { } asked && asked.Number > run.Reruns && allowSubmit)
        {
            if (run.PartEnd is not null)
            {
                return Progress(job, run, new AwsBatchProblem(AwsBatchReasons.RerunRefused,
                    $"run {runId} was split across backends by its queue's overflow; AWS Batch reruns only a run it ran whole", Fatal: false));
            }

            if (!IsFinished(job, run) || run.Outcome is not null)
            {
                return Progress(job, run, new AwsBatchProblem(AwsBatchReasons.RerunRefused,
                    run.Outcome is not null ? $"run {runId} ended {run.Outcome}; only a run that finished by itself is rerun" : $"run {runId} has not finished; a rerun waits for it", Fatal: false));
            }

            StartRerun(job, run, asked.Number, asked.Indexes);
        }

        if (run.Outcome is not null)
        {
            return Progress(job, run, null);
        }

        // 1. Settings and the spec's resources: what no retry can fix is said at once.
        var missing = options.Missing();
        if (missing.Count > 0)
        {
            return Progress(job, run, new AwsBatchProblem(AwsBatchReasons.NotConfigured, $"the controller's AWS Batch settings lack {string.Join(", ", missing)}", Fatal: false));
        }

        if (!FargateResources.TryMap(job.Spec.Resources.MilliCpu, job.Spec.Resources.MemoryBytes, out var size, out var sizeError))
        {
            return Progress(job, run, new AwsBatchProblem(AwsBatchReasons.InvalidResources, sizeError, Fatal: true));
        }

        var store = !string.IsNullOrWhiteSpace(job.Spec.Results.Uri) ? job.Spec.Results.Uri : options.DefaultResultsUri;
        if (string.IsNullOrWhiteSpace(store))
        {
            return Progress(job, run, new AwsBatchProblem(AwsBatchReasons.NoResultsStore,
                "backend aws-batch needs a results store: set spec.results.uri (s3://bucket/prefix) or the controller's BatchRunner:Results:Uri", Fatal: false));
        }

        if (QueueFor(job) is not { } queue)
        {
            return Progress(job, run, new AwsBatchProblem(AwsBatchReasons.NotConfigured,
                $"the BatchJob asks for Fargate Spot ({CapacityKey}: spot) and the controller has no {AwsBatchOptions.Section}:SpotJobQueue", Fatal: false));
        }

        try
        {
            // 2. What runs: one DescribeJobs per 100 open arrays.
            await ObserveAsync(run, cancellation).ConfigureAwait(false);

            // 3. The deadline of the whole run (AWS Batch has none of its own): stop what runs.
            if (DeadlinePassed(job, run))
            {
                await TerminateAsync(run.Arrays.Select(a => a.JobId), "spec.deadlineSeconds passed", cancellation).ConfigureAwait(false);
                run.Outcome = AwsBatchReasons.DeadlineExceeded;
                run.CompletionTime = time.GetUtcNow();
                _log.LogInformation("{BatchJob} run {RunId} passed its deadline; terminated {Arrays} array(s)", job.Metadata.Name, runId, run.Arrays.Count);
                return Progress(job, run, null);
            }

            // 4. Submit the windows that are due (a rerun's after the run's own).
            if (allowSubmit && (run.NextIndex < EndOf(job, run) || RerunLeft(run) > 0))
            {
                var limit = Math.Min(job.Spec.Parallelism, Math.Max(0, allowance ?? int.MaxValue));
                await SubmitDueAsync(job, runId, run, queue, size, store, limit, startLimit, checkpoint, cancellation).ConfigureAwait(false);
            }
        }
        catch (AwsServiceException e) when (!e.IsRetryable)
        {
            _log.LogWarning("AWS Batch refused a call for {BatchJob}: {ErrorCode}: {Message}", job.Metadata.Name, e.ErrorCode, e.ServiceMessage);
            return Progress(job, run, new AwsBatchProblem(AwsBatchReasons.Rejected, $"AWS Batch: {e.ErrorCode}: {e.ServiceMessage}", Fatal: false));
        }
        catch (AwsConfigurationException e)
        {
            return Progress(job, run, new AwsBatchProblem(AwsBatchReasons.NotConfigured, e.Message, Fatal: false));
        }

        return Progress(job, run, null);
    }

    /// <summary>
    /// Terminates every job the run submitted: the open arrays it knows, and any other array of the run that AWS
    /// Batch lists by name (one submitted just before a crash). Queued children are cancelled, running ones stopped.
    /// </summary>
    public async Task<AwsBatchProgress> CancelAsync(BatchJob? job, string batchJob, string runId, AwsBatchRunState? state, string reason, CancellationToken cancellation)
    {
        var run = state?.RunId == runId ? state.Clone() : new AwsBatchRunState { RunId = runId };
        var known = run.Arrays.Select(a => a.JobId).ToHashSet(StringComparer.Ordinal);
        var queues = new[] { run.JobQueue, options.JobQueue, options.SpotJobQueue }
            .Where(q => !string.IsNullOrWhiteSpace(q)).Distinct(StringComparer.Ordinal).Select(q => q!).ToList();
        var prefix = JobName(batchJob, runId, 0)[..^1];
        foreach (var queue in queues)
        {
            await foreach (var summary in ListAsync(new ListJobsRequest { JobQueue = queue, Filters = [new NameValues("JOB_NAME", [prefix + "*"])] }, cancellation).ConfigureAwait(false))
            {
                if (summary.JobName.StartsWith(prefix, StringComparison.Ordinal) && !JobStates.IsFinished(summary.Status) && known.Add(summary.JobId))
                {
                    _log.LogInformation("Found {JobName} ({JobId}) of run {RunId}, not recorded; terminating it too", summary.JobName, summary.JobId, runId);
                }
            }
        }

        await TerminateAsync(known, reason, cancellation).ConfigureAwait(false);
        run.Outcome ??= AwsBatchReasons.Cancelled;
        run.CompletionTime ??= time.GetUtcNow();
        foreach (var array in run.Arrays)
        {
            array.Running = 0;
        }

        _log.LogInformation("Terminated {Jobs} AWS Batch job(s) of {BatchJob} run {RunId}: {Reason}", known.Count, batchJob, runId, reason);
        return job is null
            ? new AwsBatchProgress(run, RunPhase.Cancelled, 0, run.DoneSucceeded, run.DoneFailed, 0, null, reason, _timings.MaxPoll)
            : Progress(job, run, null);
    }

    /// <summary>Where a run stands by its kept state alone, without asking AWS.</summary>
    public AwsBatchProgress Snapshot(BatchJob job, string runId, AwsBatchRunState? state) =>
        Progress(job, state?.RunId == runId ? state.Clone() : new AwsBatchRunState { RunId = runId }, null);

    private string? QueueFor(BatchJob job) =>
        AsksForSpot(job) ? (string.IsNullOrWhiteSpace(options.SpotJobQueue) ? null : options.SpotJobQueue) : options.JobQueue;

    /// <summary>Whether the BatchJob asks for Fargate Spot (<c>batchrunner.io/capacity: spot</c>, an annotation or a label).</summary>
    public static bool AsksForSpot(BatchJob job) =>
        (job.Metadata.Annotations.TryGetValue(CapacityKey, out var a) ? a : job.Metadata.Labels.TryGetValue(CapacityKey, out var l) ? l : null) is { } capacity
        && capacity.Equals("spot", StringComparison.OrdinalIgnoreCase);

    private bool DeadlinePassed(BatchJob job, AwsBatchRunState run) =>
        job.Spec.DeadlineSeconds is { } deadline && run.StartTime is { } start && run.Arrays.Count > 0
        && time.GetUtcNow() - start > TimeSpan.FromSeconds(deadline);

    private async Task SubmitDueAsync(
        BatchJob job, string runId, AwsBatchRunState run, string queue, FargateSize size, string store, int limit, int? startLimit,
        Func<AwsBatchRunState, CancellationToken, Task>? checkpoint, CancellationToken cancellation)
    {
        // A budget's limit counts the run's indexes from its first, so it bounds where windows stop (a part of a split
        // run keeps its own range).
        var total = startLimit is { } covered && run.PartEnd is null ? Math.Min(EndOf(job, run), Math.Max(0, covered)) : EndOf(job, run);
        if (run.WindowSize == 0)
        {
            run.WindowSize = WindowSize(CountOf(job, run), job.Spec.Parallelism);
        }

        if (NextWindow(job, run, limit, Math.Max(total - run.NextIndex, RerunLeft(run))) == 0)
        {
            return;
        }

        // Once per run (and again after a restart: publishing is idempotent): the spec the wrapper reads, the definition.
        run.JobQueue ??= queue;
        run.SpecLocation ??= await publisher.PublishAsync(store, job.Metadata.Name, runId, RunIdentity.SpecJson(job), cancellation).ConfigureAwait(false);
        run.JobDefinition ??= await _definitions.EnsureAsync(JobDefinitions.For(job, size, options), cancellation).ConfigureAwait(false);

        while (run.NextIndex < total && NextWindow(job, run, limit, total - run.NextIndex) is var count and > 0)
        {
            var start = run.NextIndex;
            await SubmitWindowAsync(job, runId, run, JobName(job.Metadata.Name, runId, start), start, count, null, store, checkpoint, cancellation).ConfigureAwait(false);
        }

        // A rerun's indexes, in windows of the same size: child i of a window runs its i-th index.
        var chosen = run.RerunIndexes is null ? [] : IndexRanges.Parse(run.RerunIndexes);
        while (run.NextIndex >= total && run.RerunNext < chosen.Count && NextWindow(job, run, limit, chosen.Count - run.RerunNext) is var count and > 0)
        {
            var window = RerunWindow(chosen, run.RerunNext, count);
            var name = string.Create(CultureInfo.InvariantCulture, $"{job.Metadata.Name}-{runId}-r{run.Reruns}-{run.RerunNext}");
            await SubmitWindowAsync(job, runId, run, name, run.RerunNext, window.Count, IndexRanges.Format(window), store, checkpoint, cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>Submits one window (adopting it when AWS Batch already has it by name) and records it.</summary>
    private async Task SubmitWindowAsync(
        BatchJob job, string runId, AwsBatchRunState run, string name, int start, int count, string? indexes, string store,
        Func<AwsBatchRunState, CancellationToken, Task>? checkpoint, CancellationToken cancellation)
    {
        var jobId = await FindSubmittedAsync(run.JobQueue!, name, cancellation).ConfigureAwait(false);
        if (jobId is not null)
        {
            _log.LogInformation("Found {JobName} submitted earlier as {JobId}; not submitting it again", name, jobId);
        }
        else
        {
            await limiter.AcquireAsync(cancellation).ConfigureAwait(false);
            var submitted = await api.SubmitJobAsync(SubmitRequest(job, runId, run, name, start, count, store, indexes), cancellation).ConfigureAwait(false);
            jobId = submitted.JobId;
            _log.LogInformation("Submitted {JobName} ({Count} indexes: {Indexes}) to {JobQueue} as {JobId}",
                name, count, indexes ?? string.Create(CultureInfo.InvariantCulture, $"{start}-{start + count - 1}"), run.JobQueue, jobId);
        }

        var now = time.GetUtcNow();
        run.StartTime ??= now;
        run.Arrays.Add(new ArrayRecord { JobId = jobId, JobName = name, Start = start, Size = count, Indexes = indexes, SubmittedAt = now, Status = JobStates.Submitted });
        if (indexes is null)
        {
            run.NextIndex = start + count;
        }
        else
        {
            run.RerunNext = start + count;
        }

        _quietPolls[runId] = 0;
        if (checkpoint is not null)
        {
            await checkpoint(run.Clone(), cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>Up to <paramref name="count"/> of the chosen indexes from <paramref name="from"/>, fewer when their ranges would not fit an environment value.</summary>
    private static List<int> RerunWindow(IReadOnlyList<int> chosen, int from, int count)
    {
        var window = new List<int>(count);
        var length = 0;
        for (var i = from; i < from + count; i++)
        {
            // Scattered indexes cost their digits and a comma each; contiguous ones less: this bounds the text from above.
            length += chosen[i].ToString(CultureInfo.InvariantCulture).Length + 1;
            if (length > MaxIndexesText && window.Count > 0)
            {
                break;
            }

            window.Add(chosen[i]);
        }

        return window;
    }

    /// <summary>The longest <c>BATCHRUNNER_INDEXES</c> a rerun's window carries (SubmitJob's overrides are limited in size).</summary>
    public const int MaxIndexesText = 4096;

    private static int RerunLeft(AwsBatchRunState run) => run.RerunIndexes is null ? 0 : IndexRanges.Count(run.RerunIndexes) - run.RerunNext;

    private static bool IsFinished(BatchJob job, AwsBatchRunState run) =>
        run.NextIndex >= EndOf(job, run) && run.Arrays.Count == 0 && run.WindowSize > 0 && RerunLeft(run) == 0;

    /// <summary>One past the last index this backend runs of the run: its part's end, else the run's.</summary>
    private static int EndOf(BatchJob job, AwsBatchRunState run) => run.PartEnd ?? job.Spec.Completions;

    /// <summary>The indexes this backend runs of the run.</summary>
    private static int CountOf(BatchJob job, AwsBatchRunState run) => EndOf(job, run) - (run.PartStart ?? 0);

    /// <summary>
    /// Takes a rerun: the chosen indexes leave the counts of the finished run (each had succeeded or failed) and wait
    /// to be submitted again; nothing AWS Batch ran is touched.
    /// </summary>
    private void StartRerun(BatchJob job, AwsBatchRunState run, int number, IReadOnlyList<int> indexes)
    {
        var chosen = indexes.Where(i => i >= 0 && i < job.Spec.Completions).ToHashSet();
        var failed = IndexRanges.Parse(run.FailedIndexes).ToHashSet();
        var wereFailed = chosen.Count(failed.Contains);
        run.DoneFailed -= wereFailed;
        run.DoneSucceeded -= chosen.Count - wereFailed;
        failed.ExceptWith(chosen);
        run.FailedIndexes = failed.Count == 0 ? null : IndexRanges.Format(failed);
        run.Failures.RemoveAll(f => chosen.Contains(f.Index));
        run.CompletionTime = null;
        run.Reruns = number;
        run.RerunIndexes = IndexRanges.Format(chosen);
        run.RerunNext = 0;
        _log.LogInformation("{BatchJob} run {RunId}: rerun {Number} of {Count} indexes ({Indexes})", job.Metadata.Name, run.RunId, number, chosen.Count, run.RerunIndexes);
    }

    /// <summary>
    /// The size of the window to submit now, 0 for none: submitted and not finished, plus the window, within
    /// parallelism (or nothing runs at all). When the queue's allowance binds (below parallelism), the window is cut
    /// to the room the allowance leaves, and nothing goes while it leaves none.
    /// </summary>
    private static int NextWindow(BatchJob job, AwsBatchRunState run, int limit, int left)
    {
        var unfinished = run.Arrays.Sum(a => a.Size - a.Succeeded - a.Failed);
        var next = Math.Min(run.WindowSize, left);
        if (limit < job.Spec.Parallelism)
        {
            return Math.Max(0, Math.Min(next, limit - unfinished));
        }

        return unfinished == 0 || unfinished + next <= job.Spec.Parallelism ? next : 0;
    }

    /// <summary>The SubmitJob request of one window.</summary>
    /// <param name="indexes">A rerun's window: the indexes its children run (else they run <paramref name="start"/> on).</param>
    public SubmitJobRequest SubmitRequest(BatchJob job, string runId, AwsBatchRunState run, string name, int start, int count, string store, string? indexes = null)
    {
        var spec = job.Spec;
        var command = new List<string> { options.ExecPath, "--spec", run.SpecLocation!, "--store", store, "--" };
        command.AddRange(spec.Command);
        command.AddRange(spec.Args);
        return new SubmitJobRequest
        {
            JobName = name,
            JobQueue = run.JobQueue!,
            JobDefinition = run.JobDefinition!,
            ShareIdentifier = options.FairShareByNamespace ? AwsFairShare.ShareIdentifierOf(job.Metadata.Namespace)
                : string.IsNullOrWhiteSpace(options.ShareIdentifier) ? null : options.ShareIdentifier,
            SchedulingPriorityOverride = options.FairShareByNamespace ? AwsFairShare.PriorityOf(spec) : null,
            ArrayProperties = count > 1 ? new ArrayProperties(count) : null,
            ContainerOverrides = new ContainerOverrides
            {
                Command = command,
                // A rerun's attempts are numbered after those the store holds (AWS Batch counts from 1 again).
                Environment = indexes is null
                    ? [new NameValue("BATCHRUNNER_INDEX_OFFSET", start.ToString(CultureInfo.InvariantCulture)), new NameValue(WorkloadEnvironment.Backend, Backend.AwsBatch.Name)]
                    : [new NameValue(WorkloadEnvironment.RerunIndexes, indexes), new NameValue(WorkloadEnvironment.AttemptNumbering, "store"), new NameValue(WorkloadEnvironment.Backend, Backend.AwsBatch.Name)],
            },
            RetryStrategy = RetryStrategyFor(spec.Retry),
            Timeout = spec.TimeoutSeconds is { } timeout ? new JobTimeout(Math.Max(60, (int)Math.Ceiling(Math.Min(timeout, int.MaxValue)))) : null,
            PropagateTags = true,
            Tags = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["batchrunner.io/batchjob"] = job.Metadata.Name,
                ["batchrunner.io/namespace"] = job.Metadata.Namespace,
                ["batchrunner.io/run"] = runId,
            },
        };
    }

    /// <summary>
    /// Attempts as the spec says (AWS Batch allows 1 to 10, as does the spec). With retries, an attempt that ended with
    /// any exit code, or that lost its host, is retried as on the other backends; an image that cannot be pulled
    /// fails at once, since every attempt would fail the same way. AWS Batch has no backoff between attempts, so
    /// <c>spec.retry.backoffSeconds</c> does not apply here.
    /// </summary>
    public static RetryStrategy RetryStrategyFor(RetryPolicy retry) => retry.Attempts <= 1
        ? new RetryStrategy(1)
        : new RetryStrategy(retry.Attempts,
        [
            new EvaluateOnExit { OnReason = "CannotPullContainerError*", Action = "EXIT" },
            new EvaluateOnExit { OnStatusReason = "Host EC2*", Action = "RETRY" },
            new EvaluateOnExit { OnExitCode = "*", Action = "RETRY" },
        ]);

    private async Task<string?> FindSubmittedAsync(string queue, string name, CancellationToken cancellation)
    {
        await foreach (var summary in ListAsync(new ListJobsRequest { JobQueue = queue, Filters = [new NameValues("JOB_NAME", [name])] }, cancellation).ConfigureAwait(false))
        {
            if (string.Equals(summary.JobName, name, StringComparison.Ordinal))
            {
                return summary.JobId;
            }
        }

        return null;
    }

    private async IAsyncEnumerable<JobSummary> ListAsync(ListJobsRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellation)
    {
        string? next = null;
        do
        {
            var page = await api.ListJobsAsync(request with { NextToken = next, MaxResults = 1000 }, cancellation).ConfigureAwait(false);
            foreach (var summary in page.JobSummaryList ?? [])
            {
                yield return summary;
            }

            next = page.NextToken;
        }
        while (!string.IsNullOrEmpty(next));
    }

    private async Task ObserveAsync(AwsBatchRunState run, CancellationToken cancellation)
    {
        if (run.Arrays.Count == 0)
        {
            return;
        }

        var details = new Dictionary<string, JobDetail>(StringComparer.Ordinal);
        foreach (var chunk in run.Arrays.Select(a => a.JobId).Chunk(100))
        {
            var answer = await api.DescribeJobsAsync(new DescribeJobsRequest(chunk), cancellation).ConfigureAwait(false);
            foreach (var detail in answer.Jobs ?? [])
            {
                details[detail.JobId] = detail;
            }
        }

        var changed = false;
        var now = time.GetUtcNow();
        foreach (var array in run.Arrays.ToList())
        {
            var before = (array.Status, array.Succeeded, array.Failed, array.Running);
            if (!details.TryGetValue(array.JobId, out var detail))
            {
                // Just submitted and not yet visible, or gone from AWS Batch (it forgets jobs some days after they end).
                if (now - array.SubmittedAt > _timings.LostAfter)
                {
                    Finish(run, array, array.Size - array.Succeeded, [], $"AWS Batch no longer knows job {array.JobId}");
                    changed = true;
                }

                continue;
            }

            array.Status = detail.Status;
            if (array.Size > 1)
            {
                var summary = detail.ArrayProperties?.StatusSummary ?? new Dictionary<string, int>();
                array.Succeeded = summary.GetValueOrDefault(JobStates.Succeeded);
                array.Failed = summary.GetValueOrDefault(JobStates.Failed);
                array.Running = summary.GetValueOrDefault(JobStates.Running) + summary.GetValueOrDefault(JobStates.Starting);
            }
            else
            {
                array.Succeeded = detail.Status == JobStates.Succeeded ? 1 : 0;
                array.Failed = detail.Status == JobStates.Failed ? 1 : 0;
                array.Running = detail.Status is JobStates.Running or JobStates.Starting ? 1 : 0;
            }

            changed |= before != (array.Status, array.Succeeded, array.Failed, array.Running);
            if (!JobStates.IsFinished(detail.Status))
            {
                continue;
            }

            var failures = new List<IndexFailure>();
            var children = array.ChildIndexes();
            if (array.Size == 1)
            {
                if (array.Failed == 1)
                {
                    var last = detail.Attempts is { Count: > 0 } attempts ? attempts[^1].Container : null;
                    failures.Add(new IndexFailure(children[0], ReasonOf(detail.StatusReason, detail.Container?.Reason ?? last?.Reason), detail.Container?.ExitCode ?? last?.ExitCode));
                }
            }
            else if (array.Failed > 0 || detail.Status == JobStates.Failed)
            {
                await foreach (var child in ListAsync(new ListJobsRequest { ArrayJobId = array.JobId, JobStatus = FailedChild }, cancellation).ConfigureAwait(false))
                {
                    if (child.ArrayProperties?.Index is { } index && index >= 0 && index < children.Count)
                    {
                        failures.Add(new IndexFailure(children[index], ReasonOf(child.StatusReason, child.Container?.Reason), child.Container?.ExitCode));
                    }
                }
            }

            // A parent that failed with children unaccounted for (it never ran them) fails them with its own reason.
            var failed = detail.Status == JobStates.Failed ? Math.Max(array.Size - array.Succeeded, failures.Count) : failures.Count;
            Finish(run, array, failed, failures, ReasonOf(detail.StatusReason, null));
            changed = true;
        }

        _quietPolls.AddOrUpdate(run.RunId ?? "", 0, (_, quiet) => changed ? 0 : quiet + 1);
    }

    /// <summary>Folds a finished array into the run's counters and failures.</summary>
    private void Finish(AwsBatchRunState run, ArrayRecord array, int failed, List<IndexFailure> failures, string reason)
    {
        var succeeded = array.Size - failed;
        run.DoneSucceeded += succeeded;
        run.DoneFailed += failed;
        var failedIndexes = failures.Select(f => f.Index).ToHashSet();
        if (failedIndexes.Count < failed)
        {
            // Indexes AWS did not list one by one: the first ones of the array not known to have failed otherwise.
            foreach (var index in array.ChildIndexes().Where(i => !failedIndexes.Contains(i)).Take(failed - failedIndexes.Count).ToList())
            {
                failedIndexes.Add(index);
                failures.Add(new IndexFailure(index, reason, null));
            }
        }

        if (failedIndexes.Count > 0)
        {
            run.FailedIndexes = IndexRanges.Truncate(
                IndexRanges.Format(IndexRanges.Parse(run.FailedIndexes).Concat(failedIndexes)), AwsBatchRunState.MaxFailedIndexesText, out var cut);
            run.FailedIndexesTruncated |= cut;
            run.Failures.AddRange(failures.OrderBy(f => f.Index).Take(Math.Max(0, FailuresKept - run.Failures.Count)));
            _log.LogInformation("{JobName}: {Failed} of {Size} indexes failed, e.g. index {Index}: {Reason}",
                array.JobName, failed, array.Size, failures[0].Index, failures[0].Reason);
        }

        run.Arrays.Remove(array);
    }

    private static string ReasonOf(string? statusReason, string? containerReason) =>
        (statusReason, containerReason) switch
        {
            ({ Length: > 0 } s, { Length: > 0 } c) when !s.Contains(c, StringComparison.Ordinal) => $"{s}: {c}",
            ({ Length: > 0 } s, _) => s,
            (_, { Length: > 0 } c) => c,
            _ => "failed",
        };

    private async Task TerminateAsync(IEnumerable<string> jobIds, string reason, CancellationToken cancellation)
    {
        foreach (var jobId in jobIds.ToList())
        {
            try
            {
                // TerminateJob also cancels what has not started; on an array's parent it reaches every child.
                await api.TerminateJobAsync(new TerminateJobRequest(jobId, reason), cancellation).ConfigureAwait(false);
            }
            catch (AwsServiceException e) when (!e.IsRetryable && !e.IsAccessDenied)
            {
                // A job AWS no longer knows, or one already finished: nothing left to stop.
                _log.LogDebug("TerminateJob {JobId}: {ErrorCode}: {Message}", jobId, e.ErrorCode, e.ServiceMessage);
            }
        }
    }

    private AwsBatchProgress Progress(BatchJob job, AwsBatchRunState run, AwsBatchProblem? problem)
    {
        var total = CountOf(job, run);
        var succeeded = run.DoneSucceeded + run.Arrays.Sum(a => a.Succeeded);
        var failed = run.DoneFailed + run.Arrays.Sum(a => a.Failed);
        var running = run.Arrays.Sum(a => a.Running);
        var finished = IsFinished(job, run);
        var phase = run.Outcome switch
        {
            AwsBatchReasons.Cancelled => RunPhase.Cancelled,
            AwsBatchReasons.DeadlineExceeded => RunPhase.Failed,
            _ when problem is { Fatal: true } => RunPhase.Failed,
            _ when finished => failed > 0 ? RunPhase.Failed : RunPhase.Succeeded,
            _ when running > 0 || succeeded + failed > 0 => RunPhase.Running,
            _ => RunPhase.Pending,
        };
        if (phase is RunPhase.Succeeded or RunPhase.Failed)
        {
            run.CompletionTime ??= time.GetUtcNow();
        }

        var quiet = _quietPolls.GetValueOrDefault(run.RunId ?? "");
        if (phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled)
        {
            _quietPolls.TryRemove(run.RunId ?? "", out _);
        }

        var poll = problem is not null ? _timings.BlockedRetry
            : TimeSpan.FromTicks(Math.Min(_timings.MaxPoll.Ticks, _timings.FirstPoll.Ticks * (1L << Math.Min(quiet, 20))));
        if (job.Spec.DeadlineSeconds is { } deadline && run.StartTime is { } start)
        {
            var left = start + TimeSpan.FromSeconds(deadline) - time.GetUtcNow();
            poll = TimeSpan.FromTicks(Math.Max(_timings.FirstPoll.Ticks / 5, Math.Min(poll.Ticks, left.Ticks + TimeSpan.FromSeconds(1).Ticks)));
        }

        var arrays = run.WindowSize == 0 ? 0 : (total + run.WindowSize - 1) / run.WindowSize;
        var summary = run.WindowSize == 0
            ? $"{total} indexes, not submitted yet"
            : string.Create(CultureInfo.InvariantCulture,
                $"{total} indexes in {arrays} AWS Batch job(s) of up to {run.WindowSize} on {run.JobQueue}, {job.Spec.Parallelism} at a time; {run.NextIndex - (run.PartStart ?? 0)} submitted")
                + (run.RerunIndexes is null ? "" : string.Create(CultureInfo.InvariantCulture, $"; rerun {run.Reruns}: {run.RerunNext} of {IndexRanges.Count(run.RerunIndexes)} indexes submitted"));
        return new AwsBatchProgress(run, phase, total, succeeded, failed, running, problem, summary, poll);
    }
}
