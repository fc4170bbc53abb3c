using System.CommandLine;
using BatchRunner.Core.Runs;
using BatchRunner.Local.Execution;
using BatchRunner.Local.State;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner cancel NAME</c>: asks the process running that BatchJob to stop. The runner sees the request
/// within a fraction of a second, kills its attempts' process trees and records them; running the spec again resumes.
/// </summary>
internal static class CancelCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("name") { Description = "BatchJob name" };
        var ns = new Option<string?>("--namespace", "-n") { Description = "Only the BatchJob in this namespace" };
        var command = new Command("cancel", "Stop a running BatchJob") { name, ns };
        command.SetAction(async (parsed, cancellation) =>
        {
            var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            var jobName = parsed.GetRequiredValue(name);
            if (!File.Exists(Path.Combine(store, RunStateStore.FileName)))
            {
                await stderr.WriteLineAsync($"No runs in {store}").ConfigureAwait(false);
                return ExitCodes.JobFailed;
            }

            using var state = RunStateStore.Open(store);
            var orphaned = state.ListRuns(jobName, parsed.GetValue(ns)).Where(r => r.Phase == RunPhase.Running && !LocalExecutor.HasLiveRunner(store, r.RunId)).ToList();
            var asked = state.RequestCancel(jobName, parsed.GetValue(ns));
            if (orphaned.Count > 0 && orphaned.Count == asked)
            {
                // Nobody would see the request: stop what the dead runner left running here, and say so.
                var killed = orphaned.Sum(r => LocalExecutor.KillLeftovers(store, r.Name, r.RunId));
                await stdout.WriteLineAsync(
                    $"{jobName}: its runner is gone (killed or crashed); killed {killed} process(es) it had left running. " +
                    "`batchrunner run` of the same spec resumes it").ConfigureAwait(false);
                return ExitCodes.Succeeded;
            }

            if (asked == 0)
            {
                await stderr.WriteLineAsync($"{jobName}: no run is in progress").ConfigureAwait(false);
                return ExitCodes.JobFailed;
            }

            await stdout.WriteLineAsync($"{jobName}: cancel requested for {asked} run{(asked == 1 ? "" : "s")}").ConfigureAwait(false);
            return ExitCodes.Succeeded;
        });
        return command;
    }
}
