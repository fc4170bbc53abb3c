using System.Collections.Concurrent;
using System.Text.Json;
using BatchRunner.Aws.Protocol;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Batch;

/// <summary>
/// AWS Batch as the operator's backend for <c>spec.backend: aws-batch</c>: the reconciler's calls go to the
/// <see cref="AwsBatchDispatcher"/>, whose state the host keeps (the BatchJob's <c>status.backendState</c>). Every status patch
/// wakes the BatchJob up again; those reconciles find AWS Batch not due for another look and answer with what was
/// last seen, so AWS is polled at the dispatcher's pace (and at once for a new generation), not per watch event.
/// </summary>
public sealed class AwsBatchBackend(AwsBatchDispatcher dispatcher, TimeProvider time) : IBatchBackend
{
    private readonly ConcurrentDictionary<string, (DateTimeOffset Due, long Generation, int? Allowance, int? StartLimit, int Rerun, BackendProgress Progress)> _last = new(StringComparer.Ordinal);

    private readonly UsageTally _usage = new();

    /// <summary>The spec's store, else the one AWS Batch runs write to by default (<c>BatchRunner:Results:Uri</c>).</summary>
    public string? ResultsStoreOf(BatchJob job, string? hostStore) =>
        !string.IsNullOrWhiteSpace(job.Spec.Results.Uri) ? job.Spec.Results.Uri
        : !string.IsNullOrWhiteSpace(dispatcher.Options.DefaultResultsUri) ? dispatcher.Options.DefaultResultsUri
        : hostStore;

    /// <summary>Throttling and AWS's own errors, already retried with backoff by the client: the next look may pass.</summary>
    public bool IsTransient(Exception error) => error is AwsServiceException { IsRetryable: true };

    public Backend Backend => Backend.AwsBatch;

    /// <summary>Fargate's price of an index-second: its billed task size, on Spot when asked (see <see cref="FargateBilling.PerIndexSecond"/>).</summary>
    public double? CostPerIndexSecond(BatchJob job, Core.Costs.PriceTable prices) => FargateBilling.PerIndexSecond(job, prices);

    /// <summary>Fargate bills whole seconds and one minute at least: a 5-second index costs a minute.</summary>
    public double BilledSeconds(double seconds) => FargateBilling.BilledSeconds(seconds);

    public BackendCapacity Capacity => _usage.Capacity;

    public async Task<BackendProgress> AdvanceAsync(BackendRun run, BackendCheckpoint checkpoint, CancellationToken cancellation)
    {
        var job = run.Job ?? throw new ArgumentException("a run to advance needs its BatchJob", nameof(run));
        var key = Key(run);
        var now = time.GetUtcNow();
        if (_last.TryGetValue(key, out var last) && last.Generation == run.Generation && last.Allowance == run.Allowance && last.StartLimit == run.StartLimit && last.Rerun == run.Rerun && now < last.Due && run.State is not null)
        {
            return last.Progress with { PollAfter = last.Due - now };
        }

        var rerun = run.Rerun > 0 && !run.Indexes.IsAll ? (run.Rerun, IndexRanges.Parse(run.Indexes.Ranges)) : ((int, IReadOnlyList<int>)?)null;
        (int, int)? part = null;
        if (run.Rerun == 0 && !run.Indexes.IsAll)
        {
            // A part of a split run: windows go from its first index to its last, so it must be one range.
            var indexes = IndexRanges.Parse(run.Indexes.Ranges);
            if (indexes.Count == 0 || indexes[^1] - indexes[0] + 1 != indexes.Count)
            {
                return new BackendProgress(RunPhase.Pending, indexes.Count, 0, 0, 0, null, null, null, Dispatched: false, BackendReasons.SubsetUnsupported,
                    $"AWS Batch runs a part of a run only as one range of indexes, got {run.Indexes.Ranges}", null, null, run.State, TimeSpan.FromSeconds(60)) { RefusedForInput = true };
            }

            part = (indexes[0], indexes[^1] + 1);
        }

        var progress = await dispatcher.AdvanceAsync(
            job, run.RunId, AwsBatchRunState.FromJson(run.State), (state, token) => checkpoint(state.ToJson(), token), run.AllowSubmit, run.Allowance, cancellation, rerun, part, run.StartLimit).ConfigureAwait(false);
        var external = ToExternal(progress) with { JobName = progress.Problem is null || progress.State.NextIndex > 0 ? JobNamePrefix(run) : null };
        _usage.Observe(run, external);
        if (external.IsTerminal)
        {
            _last.TryRemove(key, out _);
        }
        else
        {
            _last[key] = (time.GetUtcNow() + progress.PollAfter, run.Generation, run.Allowance, run.StartLimit, run.Rerun, external);
        }

        return external;
    }

    public async Task<BackendProgress> CancelAsync(BackendRun run, string reason, CancellationToken cancellation)
    {
        _last.TryRemove(Key(run), out _);
        _usage.Forget(run);
        var state = AwsBatchRunState.FromJson(run.State);
        try
        {
            return ToExternal(await dispatcher.CancelAsync(run.Job, run.Name, run.RunId, state, reason, cancellation).ConfigureAwait(false));
        }
        catch (Exception e) when (e is AwsServiceException { IsRetryable: false } or AwsConfigurationException)
        {
            var message = e is AwsServiceException aws ? $"AWS Batch: {aws.ErrorCode}: {aws.ServiceMessage}" : e.Message;
            var kept = state ?? new AwsBatchRunState { RunId = run.RunId };
            return new BackendProgress(
                RunPhase.Cancelled, run.Job?.Spec.Completions ?? 0, kept.DoneSucceeded, kept.DoneFailed, 0, kept.FailedIndexes, kept.StartTime, time.GetUtcNow(),
                Dispatched: false, AwsBatchReasons.Rejected, message, null, null, kept.ToJson(), TimeSpan.Zero);
        }
    }

    public async Task<BackendRelease> ReleaseAsync(BackendRun run, string reason, CancellationToken cancellation)
    {
        _usage.Forget(run);
        if (run.WasFinished || run.Job is null && run.State is null)
        {
            return BackendRelease.Done;
        }

        var stopped = await CancelAsync(run, reason, cancellation).ConfigureAwait(false);
        return stopped.Dispatched ? BackendRelease.Done : new BackendRelease(true, new BackendCondition(false, stopped.Reason, stopped.Message));
    }

    /// <summary>The common prefix of the names this backend gives a run's jobs.</summary>
    private static string JobNamePrefix(BackendRun run) => $"{run.Name}-{run.RunId}";

    private static string Key(BackendRun run) => $"{run.Uid}/{run.RunId}";

    public static BackendProgress ToExternal(AwsBatchProgress progress)
    {
        var failureReason = progress.Phase != RunPhase.Failed ? null
            : progress.State.Outcome == AwsBatchReasons.DeadlineExceeded ? AwsBatchReasons.DeadlineExceeded
            : progress.Problem is { Fatal: true } problem ? problem.Reason
            : AwsBatchReasons.IndexesFailed;
        return new BackendProgress(
            progress.Phase,
            progress.Total,
            progress.Succeeded,
            progress.Failed,
            progress.Running,
            progress.FailedIndexes,
            progress.State.StartTime,
            progress.State.CompletionTime,
            Dispatched: progress.Problem is null,
            progress.Problem?.Reason ?? AwsBatchReasons.ArraysSubmitted,
            progress.Problem?.Message ?? progress.Summary,
            failureReason,
            progress.FailureMessage,
            progress.State.ToJson(),
            progress.PollAfter)
        {
            Failures = progress.Failures.Select(f => new FailedIndex(f.Index, 0, f.ExitCode is { } code ? $"{f.Reason} (exit code {code})" : f.Reason)).ToList(),
            Summary = progress.State.StartTime is { } start && progress.State.CompletionTime is { } end
                ? $"AWS Batch queue {progress.State.JobQueue}, {DurationText.Format(end - start)}"
                : $"AWS Batch queue {progress.State.JobQueue}",
            RefusedForInput = progress.Problem is { } refusal && refusal.Reason != AwsBatchReasons.Rejected,
            Reruns = progress.State.Reruns,
            FailedIndexesTruncated = progress.State.FailedIndexesTruncated,
        };
    }
}
