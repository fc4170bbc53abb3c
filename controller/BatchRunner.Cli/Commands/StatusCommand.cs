using System.CommandLine;
using System.Globalization;
using BatchRunner.Core.Runs;
using BatchRunner.Cli.Output;
using BatchRunner.Local.Execution;
using BatchRunner.Local.State;

namespace BatchRunner.Cli.Commands;

/// <summary><c>batchrunner status [NAME]</c>: the runs in the store, or one BatchJob's runs with their failed indexes.</summary>
internal static class StatusCommand
{
    public static Command Create(TextWriter stdout)
    {
        var name = new Argument<string?>("name") { Description = "BatchJob name (all runs when left out)", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "One JSON document (as batchrunner list --json), with each run's failed indexes" };
        var command = new Command("status", "Show runs and their progress") { name, json };
        command.SetAction(async (parsed, cancellation) =>
        {
            var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            var jobName = parsed.GetValue(name);
            // Where it stands in the local controller's queues: a BatchJob waiting there has no run yet.
            var standing = jobName is null ? [] : QueueCommand.StandingLines(store, jobName);
            if (!File.Exists(Path.Combine(store, RunStateStore.FileName)))
            {
                if (parsed.GetValue(json))
                {
                    await stdout.WriteLineAsync(ListCommand.Json(store, [])).ConfigureAwait(false);
                    return jobName is null ? ExitCodes.Succeeded : ExitCodes.JobFailed;
                }

                return await NoRunsAsync(stdout, store, jobName, standing).ConfigureAwait(false);
            }

            using var state = RunStateStore.Open(store);
            var runs = state.ListRuns(jobName);
            if (parsed.GetValue(json))
            {
                var grouped = runs.GroupBy(r => (r.Namespace, r.Name)).Select(g => (g.Key.Namespace, g.Key.Name, (IReadOnlyList<RunRecord>)[.. g.OrderBy(r => r.CreatedAt)]));
                await stdout.WriteLineAsync(ListCommand.Json(store, grouped, r => state.FailedIndexes(r.RunId, 1000))).ConfigureAwait(false);
                return runs.Count == 0 && jobName is not null ? ExitCodes.JobFailed : ExitCodes.Succeeded;
            }

            if (runs.Count == 0)
            {
                return await NoRunsAsync(stdout, store, jobName, standing).ConfigureAwait(false);
            }

            var table = new QueryTable(
                ["NAME", "NAMESPACE", "RUN", "PHASE", "SUCCEEDED", "FAILED", "TOTAL", "STARTED", "DURATION"],
                runs.Select(r => new object?[]
                {
                    r.Name, r.Namespace, r.RunId, ListCommand.PhaseOf(store, r), r.Succeeded, r.Failed, r.Completions,
                    r.StartedAt?.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
                    r.StartedAt is { } start ? ProgressDisplay.FormatDuration((r.FinishedAt ?? DateTimeOffset.UtcNow) - start) : null,
                }).ToList());
            table.WritePlain(stdout);

            foreach (var dead in runs.Where(r => r.Phase == RunPhase.Running && !LocalExecutor.HasLiveRunner(store, r.RunId)))
            {
                await stdout.WriteLineAsync(
                    $"\n{dead.Name} run {dead.RunId}: its runner (pid {dead.RunnerPid}) is gone, killed or crashed while the run was going; " +
                    "nothing runs it now. `batchrunner run` of the same spec resumes it (what succeeded is kept).").ConfigureAwait(false);
            }

            foreach (var line in standing)
            {
                await stdout.WriteLineAsync($"\n{line}").ConfigureAwait(false);
            }

            if (jobName is not null)
            {
                foreach (var run in runs.Where(r => r.Reason is not null || r.Failed > 0))
                {
                    await stdout.WriteLineAsync($"\n{run.RunId}: {run.Reason}").ConfigureAwait(false);
                    foreach (var failed in state.FailedIndexes(run.RunId, 50))
                    {
                        await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  index {failed.Index} after {failed.Attempts} attempt(s): {TerminalText.Safe(failed.LastReason ?? "")}")).ConfigureAwait(false);
                    }
                }
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }

    private static async Task<int> NoRunsAsync(TextWriter stdout, string store, string? jobName, IReadOnlyList<string> standing)
    {
        if (standing.Count > 0)
        {
            foreach (var line in standing)
            {
                await stdout.WriteLineAsync(line).ConfigureAwait(false);
            }

            return ExitCodes.Succeeded;
        }

        await stdout.WriteLineAsync(jobName is null ? $"No runs yet in {store}" : $"No runs of {jobName} in {store}").ConfigureAwait(false);
        return jobName is null ? ExitCodes.Succeeded : ExitCodes.JobFailed;
    }
}
