using System.Collections.Concurrent;
using System.Text.Json;
using BatchRunner.Aws.Protocol;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Batch;

/// <summary>
/// AWS Batch as the operator's backend for <c>spec.backend: aws-batch</c>: the reconciler's calls go to the
/// <see cref="AwsBatchDispatcher"/>, whose state lives in the BatchJob's <c>status.awsBatch</c>. Every status patch
/// wakes the BatchJob up again; those reconciles find AWS Batch not due for another look and answer with what was
/// last seen, so AWS is polled at the dispatcher's pace (and at once for a new generation), not per watch event.
/// </summary>
public sealed class AwsBatchBackend(AwsBatchDispatcher dispatcher, TimeProvider time) : IExternalBackend
{
    private readonly ConcurrentDictionary<string, (DateTimeOffset Due, long Generation, ExternalProgress Progress)> _last = new(StringComparer.Ordinal);

    public Backend Backend => Backend.AwsBatch;

    public async Task<ExternalProgress> AdvanceAsync(ExternalRun run, Func<JsonElement, CancellationToken, Task> checkpoint, CancellationToken cancellation)
    {
        var job = run.Job ?? throw new ArgumentException("a run to advance needs its BatchJob", nameof(run));
        var key = Key(run);
        var now = time.GetUtcNow();
        if (_last.TryGetValue(key, out var last) && last.Generation == run.Generation && now < last.Due && run.State is not null)
        {
            return last.Progress with { PollAfter = last.Due - now };
        }

        var progress = await dispatcher.AdvanceAsync(
            job, run.RunId, AwsBatchRunState.FromJson(run.State), (state, token) => checkpoint(state.ToJson(), token), run.AllowSubmit, cancellation).ConfigureAwait(false);
        var external = ToExternal(progress);
        if (external.IsTerminal)
        {
            _last.TryRemove(key, out _);
        }
        else
        {
            _last[key] = (time.GetUtcNow() + progress.PollAfter, run.Generation, external);
        }

        return external;
    }

    public async Task<ExternalProgress> CancelAsync(ExternalRun run, string reason, CancellationToken cancellation)
    {
        _last.TryRemove(Key(run), out _);
        var state = AwsBatchRunState.FromJson(run.State);
        try
        {
            return ToExternal(await dispatcher.CancelAsync(run.Job, run.Name, run.RunId, state, reason, cancellation).ConfigureAwait(false));
        }
        catch (Exception e) when (e is AwsServiceException { IsRetryable: false } or AwsConfigurationException)
        {
            var message = e is AwsServiceException aws ? $"AWS Batch: {aws.ErrorCode}: {aws.ServiceMessage}" : e.Message;
            var kept = state ?? new AwsBatchRunState { RunId = run.RunId };
            return new ExternalProgress(
                RunPhase.Cancelled, run.Job?.Spec.Completions ?? 0, kept.DoneSucceeded, kept.DoneFailed, 0, kept.FailedIndexes, kept.StartTime, time.GetUtcNow(),
                Dispatched: false, AwsBatchReasons.Rejected, message, null, null, kept.ToJson(), TimeSpan.Zero);
        }
    }

    private static string Key(ExternalRun run) => $"{run.Uid}/{run.RunId}";

    public static ExternalProgress ToExternal(AwsBatchProgress progress)
    {
        var failureReason = progress.Phase != RunPhase.Failed ? null
            : progress.State.Outcome == AwsBatchReasons.DeadlineExceeded ? AwsBatchReasons.DeadlineExceeded
            : progress.Problem is { Fatal: true } problem ? problem.Reason
            : AwsBatchReasons.IndexesFailed;
        return new ExternalProgress(
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
            progress.PollAfter);
    }
}
