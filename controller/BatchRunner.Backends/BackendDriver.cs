using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Backends;

/// <summary>How following a run ended.</summary>
/// <param name="Progress">The last progress (terminal, unless the run was refused or left running).</param>
/// <param name="Refused">Nothing went: the backend refused the run before any of it ran.</param>
/// <param name="StoppedFollowing">The host stopped following (Ctrl-C) while the run goes on in its backend.</param>
public sealed record FollowOutcome(BackendProgress Progress, bool Refused, bool StoppedFollowing);

/// <summary>
/// Drives a run through any backend until it ends, for hosts that wait for a run (the CLI, the controller's local
/// mode): advance, keep the backend's state, show progress, wait as long as the backend asks. The same calls the
/// reconciler makes once per reconcile, in a loop.
/// </summary>
public static class BackendDriver
{
    /// <summary>How long to wait after a transient failure the backend's own client already retried.</summary>
    public static readonly TimeSpan TransientPause = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Where a run of <paramref name="job"/> stands on its backend, without submitting anything: the backend is handed its
    /// state kept beside <paramref name="store"/> and asked once (a rerun is decided against this).
    /// </summary>
    public static async Task<BackendProgress> LookAsync(IBatchBackend backend, Core.Spec.BatchJob job, string runId, string store, ILogger log, CancellationToken cancellation)
    {
        var look = new BackendRun(job, job.Metadata.Namespace, job.Metadata.Name, runId, 0, runId, IndexSelection.All, null, AllowSubmit: false);
        var state = await BackendStateFile.For(store, look, backend.Backend.Name).LoadAsync(log, cancellation).ConfigureAwait(false);
        return await backend.AdvanceAsync(look with { State = state }, (_, _) => Task.CompletedTask, cancellation).ConfigureAwait(false);
    }

    /// <param name="allowance">Asked before each call: what the run's queue admits now (null: no scheduler, its parallelism).</param>
    /// <param name="prices">For a BatchJob with <c>spec.budget</c>: the prices its cost is projected at (see <see cref="RunBudget"/>).</param>
    public static async Task<FollowOutcome> FollowAsync(
        IBatchBackend backend, BackendRun run, BackendStateFile? stateFile, Action<BackendProgress>? observe, TimeProvider time, ILogger log, CancellationToken cancellation,
        Func<int?>? allowance = null, Core.Costs.PriceTable? prices = null)
    {
        var state = run.State ?? (stateFile is null ? null : await stateFile.LoadAsync(log, cancellation).ConfigureAwait(false));
        BackendCheckpoint checkpoint = stateFile is null ? (_, _) => Task.CompletedTask : (kept, token) => stateFile.SaveAsync(kept, token);
        BackendProgress? last = null;
        Core.Scheduling.RuntimeSummary? runtimes = null;
        Core.Costs.BudgetStanding? budget = null;
        while (true)
        {
            BackendProgress progress;
            try
            {
                if (allowance is not null)
                {
                    run = run with { Allowance = allowance() };
                }

                if (prices is not null && run.Job is { } job)
                {
                    var standing = RunBudget.Standing(backend, job, prices, last?.Succeeded ?? 0, last?.Failed ?? 0, last?.Active ?? 0, runtimes);
                    if (standing is not null && standing.Reason != budget?.Reason)
                    {
                        log.Log(standing.Reason == Core.Costs.BudgetStanding.BudgetReached ? LogLevel.Warning : LogLevel.Information, "{BatchJob}: budget: {Message}", run.Name, standing.Message);
                    }

                    budget = standing;
                    if (last is null && standing is { Reason: Core.Costs.BudgetStanding.NoPrice })
                    {
                        // A budget nothing can be measured against is refused before anything runs, not waited on.
                        return new FollowOutcome(new BackendProgress(Core.Runs.RunPhase.Pending, job.Spec.Completions, 0, 0, 0, null, null, null, Dispatched: false,
                            standing.Reason, standing.Message, null, null, null, TimeSpan.Zero) { RefusedForInput = true }, Refused: true, StoppedFollowing: false);
                    }

                    if (last is not null && RunBudget.Ends(budget, last))
                    {
                        var stopped = await backend.CancelAsync(run with { State = state }, Core.Costs.BudgetStanding.BudgetReached, cancellation).ConfigureAwait(false);
                        return new FollowOutcome(RunBudget.Ended(stopped, budget!), Refused: false, StoppedFollowing: false);
                    }

                    run = RunBudget.Capped(run, budget);
                }

                progress = await backend.AdvanceAsync(run with { State = state }, checkpoint, cancellation).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                return await LastLookAsync(backend, run with { State = state }, checkpoint).ConfigureAwait(false);
            }
            catch (Exception e) when (backend.IsTransient(e))
            {
                log.LogWarning("{Backend} did not answer ({Error}); trying again shortly", backend.Backend.Name, e.Message);
                if (!await DelayAsync(TransientPause, time, cancellation).ConfigureAwait(false))
                {
                    return await LastLookAsync(backend, run with { State = state }, checkpoint).ConfigureAwait(false);
                }

                continue;
            }

            // Written when it changed: a poll that found nothing new writes nothing.
            if (stateFile is not null && progress.State is { } kept && kept.GetRawText() != state?.GetRawText())
            {
                await stateFile.SaveAsync(kept, CancellationToken.None).ConfigureAwait(false);
            }

            state = progress.State ?? state;
            (last, runtimes) = (progress, progress.Runtimes ?? runtimes);

            observe?.Invoke(progress);
            if (progress.IsTerminal)
            {
                return new FollowOutcome(progress, Refused: false, StoppedFollowing: false);
            }

            var queued = progress.Reason == BackendReasons.Queued;
            if (!progress.Dispatched && progress.JobName is null && progress.Reason.Length > 0 && !queued)
            {
                return new FollowOutcome(progress, Refused: true, StoppedFollowing: false);
            }

            if (!progress.Dispatched && progress.Reason.Length > 0 && !queued)
            {
                // What went goes on while something refuses the rest (a permission, a quota): say so and keep following.
                log.LogWarning("{BatchJob}: {Message}", run.Name, progress.Message);
            }

            if (!await DelayAsync(progress.PollAfter, time, cancellation).ConfigureAwait(false))
            {
                return await LastLookAsync(backend, run with { State = state }, checkpoint).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The host stopped following: one look without the host's token says whether the run ended with it (local
    /// processes stop with their host) or goes on in its backend.
    /// </summary>
    private static async Task<FollowOutcome> LastLookAsync(IBatchBackend backend, BackendRun run, BackendCheckpoint checkpoint)
    {
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var progress = await backend.AdvanceAsync(run with { AllowSubmit = false }, checkpoint, bounded.Token).ConfigureAwait(false);
        return new FollowOutcome(progress, Refused: false, StoppedFollowing: !progress.IsTerminal);
    }

    private static async Task<bool> DelayAsync(TimeSpan delay, TimeProvider time, CancellationToken cancellation)
    {
        if (delay <= TimeSpan.Zero)
        {
            return !cancellation.IsCancellationRequested;
        }

        try
        {
            await Task.Delay(delay, time, cancellation).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}

/// <summary>
/// A backend's state for one run kept in a file beside the host's store (<c>STORE/BACKEND/NAMESPACE/NAME/RUNID.json</c>),
/// for hosts without a BatchJob status: following the same spec again hands the backend what it returned last time.
/// </summary>
public sealed class BackendStateFile(string path)
{
    public static BackendStateFile For(string store, BackendRun run, string backend) =>
        new(System.IO.Path.Combine(store, backend, run.Namespace, run.Name, run.RunId + ".json"));

    public string Path { get; } = path;

    public async Task<JsonElement?> LoadAsync(ILogger log, CancellationToken cancellation)
    {
        if (!File.Exists(Path))
        {
            return null;
        }

        try
        {
            await using var stream = File.OpenRead(Path);
            using var document = await JsonDocument.ParseAsync(stream, cancellationToken: cancellation).ConfigureAwait(false);
            return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : null;
        }
        catch (JsonException e)
        {
            // A damaged state file costs the backend lookups, never a second submission (names are deterministic).
            log.LogWarning("Ignoring the unreadable state {Path}: {Message}", Path, e.Message);
            return null;
        }
    }

    /// <summary>Written whole or not at all (a temporary file renamed over the old one).</summary>
    public async Task SaveAsync(JsonElement state, CancellationToken cancellation)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        var temporary = Path + ".tmp";
        await File.WriteAllTextAsync(temporary, state.GetRawText(), cancellation).ConfigureAwait(false);
        File.Move(temporary, Path, overwrite: true);
    }
}
