using System.Collections.Concurrent;
using System.Text.Json;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Tests.Support;

/// <summary>
/// A fourth backend, known only to the tests: it "runs" a run's indexes in two steps, keeping what it submitted in
/// its own state (which the host must hand back), and fails the indexes its spec lists in env FAIL (e.g. "1,3").
/// Registered the way any backend is, with no product edit: the proof that the seam is real.
/// </summary>
public sealed class TeleportBackend : IBatchBackend
{
    public static readonly Backend Name = Backend.Parse("teleport");

    private readonly UsageTally _usage = new();

    public Backend Backend => Name;

    public ConcurrentQueue<BackendRun> Advanced { get; } = new();

    public ConcurrentQueue<BackendRun> Released { get; } = new();

    public BackendCapacity Capacity => _usage.Capacity;

    public async Task<BackendProgress> AdvanceAsync(BackendRun run, BackendCheckpoint checkpoint, CancellationToken cancellation)
    {
        Advanced.Enqueue(run);
        var job = run.Job!;
        var total = job.Spec.Completions;
        if (run.State is not { } state || !state.TryGetProperty("submitted", out _))
        {
            var submitted = JsonSerializer.SerializeToElement(new Dictionary<string, object> { ["submitted"] = total, ["runId"] = run.RunId });
            await checkpoint(submitted, cancellation);
            return Progress(RunPhase.Running, total, 0, [], submitted) with { JobName = $"tp-{run.RunId}" };
        }

        var failing = job.Spec.Env.FirstOrDefault(e => e.Name == "FAIL")?.Value is { } list ? IndexRanges.Parse(list) : [];
        var progress = Progress(failing.Count == 0 ? RunPhase.Succeeded : RunPhase.Failed, total, total - failing.Count, failing, state) with { JobName = $"tp-{run.RunId}" };
        _usage.Observe(run, progress);
        return progress;
    }

    public Task<BackendProgress> CancelAsync(BackendRun run, string reason, CancellationToken cancellation) =>
        Task.FromResult(Progress(RunPhase.Cancelled, run.Job?.Spec.Completions ?? 0, 0, [], run.State));

    public Task<BackendRelease> ReleaseAsync(BackendRun run, string reason, CancellationToken cancellation)
    {
        Released.Enqueue(run);
        return Task.FromResult(BackendRelease.Done);
    }

    private static BackendProgress Progress(RunPhase phase, int total, int succeeded, IReadOnlyList<int> failed, JsonElement? state) => new(
        phase, total, succeeded, failed.Count, phase == RunPhase.Running ? total : 0, failed.Count == 0 ? null : IndexRanges.Format(failed),
        DateTimeOffset.UnixEpoch, phase is RunPhase.Succeeded or RunPhase.Failed ? DateTimeOffset.UnixEpoch.AddSeconds(1) : null,
        Dispatched: true, "Teleported", $"{total} indexes teleported", phase == RunPhase.Failed ? "IndexesFailed" : null,
        phase == RunPhase.Failed ? $"{failed.Count} of {total} indexes failed" : null, state, TimeSpan.FromMilliseconds(50))
    {
        Failures = failed.Select(i => new FailedIndex(i, 1, "lost in transit")).ToList(),
        Summary = "teleported",
    };
}
