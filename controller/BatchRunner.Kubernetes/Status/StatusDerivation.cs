using BatchRunner.Core.Runs;
using k8s.Models;

namespace BatchRunner.Kubernetes.Status;

/// <summary>Derives a BatchJob's progress from its Job, level-based: the same inputs always give the same status.</summary>
public static class StatusDerivation
{
    /// <param name="previous">The status as it stands; its conditions and terminal phase carry over.</param>
    /// <param name="job">The BatchJob's Job, or null when there is none (yet, or no longer).</param>
    /// <param name="failedIndexes">Failed indexes when the Job does not report them itself (from its pods), else null.</param>
    public static BatchJobStatus FromJob(BatchJobStatus previous, V1Job? job, int total, IReadOnlyCollection<int>? failedIndexes)
    {
        // A finished BatchJob keeps its outcome even after its Job's TTL removed the Job.
        if (previous.IsTerminal && (job is null || previous.Phase == RunPhase.Cancelled))
        {
            return previous with { Active = 0 };
        }

        if (job?.Status is not { } status)
        {
            return previous with { Phase = RunPhase.Pending, Total = total, Succeeded = 0, Failed = 0, Active = 0 };
        }

        var failedText = status.FailedIndexes ?? (failedIndexes is { Count: > 0 } ? IndexRanges.Format(failedIndexes) : null);
        var failedCount = failedText is not null ? IndexRanges.Count(failedText) : status.Failed ?? 0;
        var complete = HasCondition(status, "Complete");
        var failed = HasCondition(status, "Failed");
        var phase = complete ? RunPhase.Succeeded
            : failed ? RunPhase.Failed
            : (status.Active ?? 0) > 0 || (status.Succeeded ?? 0) > 0 || (status.Failed ?? 0) > 0 ? RunPhase.Running
            : RunPhase.Pending;
        return previous with
        {
            Phase = phase,
            JobName = job.Metadata.Name,
            Total = total,
            Succeeded = status.Succeeded ?? 0,
            Failed = failedCount,
            Active = status.Active ?? 0,
            FailedIndexes = string.IsNullOrEmpty(failedText) ? null : failedText,
            StartTime = status.StartTime is { } start ? new DateTimeOffset(DateTime.SpecifyKind(start, DateTimeKind.Utc)) : previous.StartTime,
            CompletionTime = complete || failed ? FinishedAt(status) ?? previous.CompletionTime : null,
        };
    }

    /// <summary>
    /// A run of several Jobs (<see cref="Dispatch.JobParts"/>) as one: counts add up, failed indexes join (each part's
    /// already in the run's numbering), it started with its first part and finished with its last; it succeeded once
    /// every part did and failed once every part finished and one failed. One part is that part's status.
    /// </summary>
    public static BatchJobStatus FromParts(IReadOnlyList<BatchJobStatus> parts, int total)
    {
        if (parts.Count == 1)
        {
            return parts[0] with { Total = total };
        }

        var finished = parts.Count > 0 && parts.All(p => p.Phase is RunPhase.Succeeded or RunPhase.Failed);
        var phase = finished ? parts.Any(p => p.Phase == RunPhase.Failed) ? RunPhase.Failed : RunPhase.Succeeded
            : parts.Any(p => p.Phase is RunPhase.Running or RunPhase.Succeeded or RunPhase.Failed) ? RunPhase.Running
            : RunPhase.Pending;
        var failed = parts.Where(p => p.FailedIndexes is not null).SelectMany(p => IndexRanges.Parse(p.FailedIndexes)).ToList();
        return new BatchJobStatus
        {
            Phase = phase,
            JobName = parts.Count > 0 ? parts[0].JobName : null,
            Total = total,
            Succeeded = parts.Sum(p => p.Succeeded ?? 0),
            Failed = parts.Sum(p => p.Failed ?? 0),
            Active = parts.Sum(p => p.Active ?? 0),
            FailedIndexes = failed.Count == 0 ? null : IndexRanges.Format(failed),
            StartTime = parts.Select(p => p.StartTime).Where(t => t is not null).Min(),
            CompletionTime = finished ? parts.Select(p => p.CompletionTime).Max() : null,
        };
    }

    /// <summary>Why the Job failed, as the Job says it (BackoffLimitExceeded, DeadlineExceeded, FailedIndexes…).</summary>
    public static (string Reason, string Message)? FailureOf(V1Job? job)
    {
        var condition = job?.Status?.Conditions?.FirstOrDefault(c => c.Type == "Failed" && c.Status == "True");
        return condition is null ? null : (condition.Reason ?? "JobFailed", condition.Message ?? "the Job failed");
    }

    private static bool HasCondition(V1JobStatus status, string type) =>
        status.Conditions?.Any(c => c.Type == type && c.Status == "True") == true;

    private static DateTimeOffset? FinishedAt(V1JobStatus status)
    {
        var time = status.CompletionTime
            ?? status.Conditions?.Where(c => c.Status == "True" && c.Type is "Complete" or "Failed").Select(c => c.LastTransitionTime).FirstOrDefault();
        return time is { } value ? new DateTimeOffset(DateTime.SpecifyKind(value, DateTimeKind.Utc)) : null;
    }
}
