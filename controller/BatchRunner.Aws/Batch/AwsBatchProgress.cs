using BatchRunner.Core.Runs;

namespace BatchRunner.Aws.Batch;

/// <summary>Why a run cannot be dispatched (or go on), in words for a condition. Fatal ones fail the run.</summary>
public sealed record AwsBatchProblem(string Reason, string Message, bool Fatal);

/// <summary>Condition reasons of the AWS Batch backend, shared by its doors.</summary>
public static class AwsBatchReasons
{
    public const string ArraysSubmitted = "ArraysSubmitted";
    public const string NotConfigured = "AwsBatchNotConfigured";
    public const string InvalidResources = "InvalidResources";
    public const string NoResultsStore = "NoResultsStore";
    public const string Rejected = "AwsBatchRejected";
    public const string IndexesFailed = "IndexesFailed";
    public const string DeadlineExceeded = "DeadlineExceeded";
    public const string Cancelled = "Cancelled";
    public const string RerunRefused = "RerunRefused";
}

/// <summary>What one call of the dispatcher found and did: the run's state to keep, its counts and phase.</summary>
public sealed record AwsBatchProgress(
    AwsBatchRunState State,
    RunPhase Phase,
    int Total,
    int Succeeded,
    int Failed,
    int Running,
    AwsBatchProblem? Problem,
    string Summary,
    TimeSpan PollAfter)
{
    public bool IsTerminal => Phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled;

    public string? FailedIndexes => State.FailedIndexes;

    public IReadOnlyList<IndexFailure> Failures => State.Failures;

    /// <summary>Why the run failed, in words, when it did.</summary>
    public string? FailureMessage => Phase switch
    {
        RunPhase.Failed when State.Outcome == AwsBatchReasons.DeadlineExceeded => "the run passed spec.deadlineSeconds; its AWS Batch jobs were terminated",
        RunPhase.Failed when Problem is { Fatal: true } problem => problem.Message,
        RunPhase.Failed => $"{Failed} of {Total} indexes failed" +
            (Failures.Count > 0 ? ": " + string.Join("; ", Failures.Take(5).Select(f => $"index {f.Index}: {f.Reason}{(f.ExitCode is { } code ? $" (exit code {code})" : "")}")) : ""),
        _ => null,
    };
}
