using System.Globalization;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Status;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// A run its queue's overflow rule split across backends (<c>status.backends</c>): each part is a subset of the
/// run's indexes that one backend dispatches, as any backend dispatches a subset (<see cref="BackendRun.Indexes"/>),
/// and the run's status is their sum. The split is recorded before anything is dispatched, and an index belongs to
/// one part only, so none runs on two backends; cancel and delete go to every part.
/// </summary>
public sealed partial class BatchJobReconciler
{
    /// <summary>How soon a part whose backend did not answer is looked at again.</summary>
    private static readonly TimeSpan UnansweredPart = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Records the split its queue decided (the lowest indexes stay on spec.backend, the rest go to the next backend),
    /// with an Overflow condition and an event, before anything is dispatched. An overflow backend this controller
    /// does not have leaves the run whole where it is, and says why.
    /// </summary>
    private async Task<BatchJobStatus> SplitAsync(
        BatchJobObject batchJob, BatchJob job, IBatchBackend backend, OverflowPlan plan, string queue, BatchJobStatus previous, BatchJobStatus status, CancellationToken cancellation)
    {
        var now = time.GetUtcNow();
        var generation = status.ObservedGeneration ?? 0;
        var total = job.Spec.Completions;
        var keep = Math.Clamp(plan.Keep, 0, total);
        var moved = IndexRanges.Format(Enumerable.Range(keep, total - keep).ToList());
        var kept = IndexRanges.Format(Enumerable.Range(0, keep).ToList());
        if (!backends.TryResolve(plan.To, out _, out var unavailable))
        {
            var message = $"queue {queue} would send indexes {moved} to {plan.To.Name} ({plan.Why}), but {unavailable.Message}; they wait on {backend.Backend.Name}";
            if (status.Find(Conditions.Overflow)?.Message != message)
            {
                log.LogWarning("{BatchJob}: {Message}", job.Metadata.Name, message);
                await RecordAsync(batchJob, "Warning", Conditions.Reasons.OverflowUnavailable, message, cancellation).ConfigureAwait(false);
            }

            return status with
            {
                Conditions = Conditions.With(status.Conditions, Conditions.Overflow, false, Conditions.Reasons.OverflowUnavailable, message, generation, now),
            };
        }

        var said = string.Create(CultureInfo.InvariantCulture,
            $"indexes {moved} go to {plan.To.Name}, {plan.OverflowParallelism} at a time ({plan.Why}); {(keep == 0 ? "none stay" : $"{kept} stay")} on {backend.Backend.Name}");
        var split = status with
        {
            Backends =
            [
                new BackendShare { Name = backend.Backend.Name, Indexes = kept, Parallelism = plan.KeptParallelism },
                new BackendShare { Name = plan.To.Name, Indexes = moved, Parallelism = plan.OverflowParallelism },
            ],
            Conditions = Conditions.With(status.Conditions, Conditions.Overflow, true, Conditions.Reasons.OverflowDispatched, said, generation, now),
        };
        log.LogInformation("{BatchJob}: {Message}", job.Metadata.Name, said);
        await RecordAsync(batchJob, "Normal", Conditions.Reasons.OverflowDispatched, said, cancellation).ConfigureAwait(false);
        await PublishAsync(batchJob, previous, split, cancellation).ConfigureAwait(false);
        return split;
    }

    /// <summary>Each part's backend advances its indexes; the run's progress is their sum.</summary>
    private async Task<(BackendProgress Progress, IReadOnlyList<BackendShare> Shares)> AdvancePartsAsync(
        string key, BatchJob job, IBatchBackend backend, BackendRun run, IReadOnlyList<BackendShare> split, Func<int, BackendCheckpoint> checkpointOf, CancellationToken cancellation)
    {
        var parts = new List<(BackendShare Share, BackendProgress? Progress)>(split.Count);
        for (var i = 0; i < split.Count; i++)
        {
            var share = split[i];
            if (share.Indexes.Length == 0)
            {
                parts.Add((share, null));
                continue;
            }

            if (PartBackend(backend, share, i) is not { } on)
            {
                parts.Add((share, Unavailable(share, job.Spec.Completions)));
                continue;
            }

            // Each part runs within its own parallelism, and within what its backend's pool admitted of it.
            var admitted = i == 0 ? run.Allowance : admissions?.Find(OverflowPlan.KeyOf(key, on.Backend)) is { } standing ? standing.IsWaiting ? standing.Allowance : null : 0;
            var part = run with
            {
                Indexes = IndexSelection.Of(IndexRanges.Parse(share.Indexes)),
                State = i == 0 ? run.State : share.State,
                Allowance = Math.Min(admitted ?? int.MaxValue, share.Parallelism),
                ExternalQueue = i == 0 ? run.ExternalQueue : null,
                LastPhase = share.Phase,
            };
            try
            {
                parts.Add((share, await on.AdvanceAsync(part, checkpointOf(i), cancellation).ConfigureAwait(false)));
            }
            catch (Exception e) when (i > 0 && e is not OperationCanceledException && on.IsTransient(e))
            {
                // The other backend's bad minute does not hold up spec.backend's part: its part stands as last seen, and is looked at again soon.
                log.LogWarning("{BatchJob}: {Backend} did not answer for its part ({Error}); looking again shortly", key, on.Backend.Name, e.Message);
                parts.Add((share, Unavailable(share, job.Spec.Completions) with
                {
                    Active = share.Active, Dispatched = share.JobName is not null, Reason = "", Message = $"{on.Backend.Name} did not answer: {e.Message}", PollAfter = UnansweredPart,
                }));
            }
        }

        return (Combine(parts, job.Spec.Completions), Shares(parts));
    }

    /// <summary>Every part's backend stops what it runs of the run.</summary>
    private async Task<(BackendProgress Progress, IReadOnlyList<BackendShare> Shares)> CancelPartsAsync(
        string key, IBatchBackend backend, BackendRun run, IReadOnlyList<BackendShare> split, string reason, CancellationToken cancellation)
    {
        var parts = new List<(BackendShare Share, BackendProgress? Progress)>(split.Count);
        for (var i = 0; i < split.Count; i++)
        {
            var share = split[i];
            var progress = share.Indexes.Length == 0 ? null
                : PartBackend(backend, share, i) is { } on
                    ? await on.CancelAsync(run with { Indexes = IndexSelection.Of(IndexRanges.Parse(share.Indexes)), State = i == 0 ? run.State : share.State }, reason, cancellation).ConfigureAwait(false)
                    : Unavailable(share, run.Job?.Spec.Completions ?? 0);
            parts.Add((share, progress));
        }

        log.LogInformation("Cancelled {BatchJob} on {Backends}", key, string.Join(", ", split.Where(s => s.Indexes.Length > 0).Select(s => s.Name)));
        return (Combine(parts, run.Job?.Spec.Completions ?? split.Sum(s => IndexRanges.Count(s.Indexes))), Shares(parts));
    }

    /// <summary>Every part's backend removes what the run left; released once all of them are.</summary>
    private async Task<BackendRelease> ReleasePartsAsync(IBatchBackend backend, BackendRun run, IReadOnlyList<BackendShare> split, string reason, CancellationToken cancellation)
    {
        var released = true;
        BackendCondition? problem = null;
        for (var i = 0; i < split.Count; i++)
        {
            var share = split[i];
            if (share.Indexes.Length == 0 || PartBackend(backend, share, i) is not { } on)
            {
                // A part whose backend this controller no longer has cannot be reached; said, not waited for.
                problem ??= share.Indexes.Length == 0 ? null : new BackendCondition(false, Conditions.Reasons.OverflowUnavailable, $"{share.Name} is not a backend of this controller now; its part ({share.Indexes}) was not stopped");
                continue;
            }

            var part = await on.ReleaseAsync(run with { Indexes = IndexSelection.Of(IndexRanges.Parse(share.Indexes)), State = i == 0 ? run.State : share.State }, reason, cancellation)
                .ConfigureAwait(false);
            released &= part.Released;
            problem ??= part.Problem;
        }

        return new BackendRelease(released, problem);
    }

    /// <summary>
    /// The split's parts and the Overflow condition in the status: a part whose backend does not take its indexes
    /// says why (an event when that is new), and a part that goes says so again.
    /// </summary>
    private async Task<BatchJobStatus> WithPartsAsync(
        BatchJobObject batchJob, BatchJobStatus status, IReadOnlyList<BackendShare> shares, long generation, DateTimeOffset now, CancellationToken cancellation)
    {
        var next = status with { Backends = shares };
        foreach (var share in shares.Skip(1))
        {
            if (share.Indexes.Length == 0 || share.Refusal is not { } refusal)
            {
                continue;
            }

            var message = $"{share.Name} does not take indexes {share.Indexes} now: {refusal}";
            if (status.Find(Conditions.Overflow)?.Message != message)
            {
                log.LogWarning("{BatchJob}: {Message}", batchJob.Metadata.Name, message);
                await RecordAsync(batchJob, "Warning", Conditions.Reasons.OverflowRefused, message, cancellation).ConfigureAwait(false);
            }

            return next with { Conditions = Conditions.With(next.Conditions, Conditions.Overflow, false, Conditions.Reasons.OverflowRefused, message, generation, now) };
        }

        return next.Find(Conditions.Overflow) is { Status: "False", Reason: Conditions.Reasons.OverflowRefused }
            ? next with
            {
                Conditions = Conditions.With(next.Conditions, Conditions.Overflow, true, Conditions.Reasons.OverflowDispatched,
                    $"indexes {shares[1].Indexes} run on {shares[1].Name}", generation, now),
            }
            : next;
    }

    /// <summary>The backend of a part: spec.backend's for the first, else the one it names, when this controller has it.</summary>
    private IBatchBackend? PartBackend(IBatchBackend primary, BackendShare share, int part) =>
        part == 0 ? primary : Backend.TryParse(share.Name, out var named) && backends.TryResolve(named, out var found, out _) ? found : null;

    /// <summary>A part whose backend this controller does not have: where it stood, and why nothing more happens to it.</summary>
    private static BackendProgress Unavailable(BackendShare share, int total) => new(
        share.Phase ?? RunPhase.Pending, IndexRanges.Count(share.Indexes), share.Succeeded, share.Failed, 0, share.FailedIndexes, null, null,
        Dispatched: false, Conditions.Reasons.OverflowUnavailable, $"{share.Name} is not a backend of this controller now", null, null, share.State, TimeSpan.FromSeconds(60));

    private static List<BackendShare> Shares(List<(BackendShare Share, BackendProgress? Progress)> parts) =>
    [
        .. parts.Select((p, i) => p.Progress is not { } progress ? p.Share : p.Share with
        {
            Phase = progress.Phase,
            Succeeded = progress.Succeeded,
            Failed = progress.Failed,
            Active = progress.Active,
            FailedIndexes = IndexRanges.Truncate(progress.FailedIndexes, BatchJobStatus.MaxFailedIndexesText, out _),
            JobName = progress.JobName ?? p.Share.JobName,
            State = i == 0 ? null : progress.State ?? p.Share.State,
            Refusal = !progress.Dispatched && progress.Reason is { Length: > 0 } reason && reason != BackendReasons.Queued ? $"{reason}: {progress.Message}" : null,
        }),
    ];

    /// <summary>
    /// A split run's progress from its parts': counts summed, failed indexes joined, finished when every part is
    /// (Cancelled, then Failed, before Succeeded), the first part's dispatch story and state (the others keep theirs
    /// in their part). A part with no indexes counts as done.
    /// </summary>
    public static BackendProgress Combine(IReadOnlyList<(BackendShare Share, BackendProgress? Progress)> parts, int total)
    {
        var going = parts.Where(p => p.Progress is not null).Select(p => p.Progress!).ToList();
        var lead = parts[0].Progress ?? going.FirstOrDefault()
            ?? throw new ArgumentException("a split run has a part with indexes", nameof(parts));
        var finished = going.All(p => p.IsTerminal);
        var phase = finished
            ? going.Any(p => p.Phase == RunPhase.Cancelled) ? RunPhase.Cancelled : going.Any(p => p.Phase == RunPhase.Failed) ? RunPhase.Failed : RunPhase.Succeeded
            : going.Any(p => p.Phase != RunPhase.Pending) ? RunPhase.Running : RunPhase.Pending;
        var failed = going.SelectMany(p => IndexRanges.Parse(p.FailedIndexes)).ToList();
        var failing = going.FirstOrDefault(p => p.Phase == RunPhase.Failed && p.FailureReason is not null);
        return lead with
        {
            Phase = phase,
            Total = total,
            Succeeded = going.Sum(p => p.Succeeded),
            Failed = going.Sum(p => p.Failed),
            Active = going.Sum(p => p.Active),
            FailedIndexes = failed.Count == 0 ? null : IndexRanges.Format(failed),
            StartTime = going.Select(p => p.StartTime).Where(t => t is not null).Min(),
            CompletionTime = finished ? going.Select(p => p.CompletionTime).Where(t => t is not null).Max() : null,
            FailureReason = phase == RunPhase.Failed ? failing?.FailureReason ?? "IndexesFailed" : null,
            FailureMessage = phase == RunPhase.Failed ? failing?.FailureMessage ?? string.Create(CultureInfo.InvariantCulture, $"{going.Sum(p => p.Failed)} of {total} indexes failed") : null,
            PollAfter = going.Where(p => !p.IsTerminal).Select(p => p.PollAfter).DefaultIfEmpty(lead.PollAfter).Min(),
            Events = [.. going.SelectMany(p => p.Events)],
            Failures = [.. going.SelectMany(p => p.Failures).OrderBy(f => f.Index)],
            Runtimes = going.Aggregate((RuntimeSummary?)null, (sum, p) => RuntimeSummary.Merge(sum, p.Runtimes)),
            State = parts[0].Progress?.State,
        };
    }
}
