using System.CommandLine;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Local.Execution;
using BatchRunner.Local.State;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner delete NAME [--run ID]</c>: removes runs of a BatchJob from the local store, files and state together,
/// and refuses a run that is running. Without <c>--run</c>, every run of the BatchJob.
/// </summary>
internal static class DeleteCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("name") { Description = "BatchJob name" };
        var ns = new Option<string>("--namespace", "-n") { Description = "The BatchJob's namespace", DefaultValueFactory = _ => "default" };
        var runOption = new Option<string?>("--run") { Description = "The run to delete (default: every run of the BatchJob)" };
        var command = new Command("delete", "Delete a BatchJob's runs from the local store: their results, logs and state") { name, ns, runOption };
        command.SetAction(async (parsed, cancellation) =>
        {
            var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            var (jobName, space, runId) = (parsed.GetRequiredValue(name), parsed.GetRequiredValue(ns), parsed.GetValue(runOption));
            if (!await BatchJobName.CheckAsync("delete", jobName, stderr).ConfigureAwait(false))
            {
                return ExitCodes.InvalidInput;
            }

            if (!File.Exists(Path.Combine(store, RunStateStore.FileName)))
            {
                await stderr.WriteLineAsync($"delete: no runs in the store {store}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            using var state = RunStateStore.Open(store);
            var runs = state.ListRuns(jobName, space).Where(r => runId is null || r.RunId == runId).ToList();
            if (runs.Count == 0)
            {
                await stderr.WriteLineAsync(runId is null
                    ? $"delete: no run of {jobName} in namespace {space} in the store {store} (batchrunner list shows what is there)"
                    : $"delete: {jobName} has no run {runId} in namespace {space} in the store {store} (batchrunner status {jobName} lists its runs)").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            // Nothing is deleted while any of them runs: a runner writing into a folder being removed loses both.
            if (runs.FirstOrDefault(r => r.Phase is RunPhase.Pending or RunPhase.Running && LocalExecutor.HasLiveRunner(store, r.RunId)) is { } running)
            {
                await stderr.WriteLineAsync($"delete: {jobName} run {running.RunId} is running (pid {running.RunnerPid}); `batchrunner cancel {jobName}` stops it, then delete it. Nothing was deleted").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            foreach (var run in runs)
            {
                // The folder leaves the tables at once (renamed out of the run=… pattern), then the state goes, then the files.
                var folder = Path.Combine(store, StoreLayout.RunPrefix(jobName, run.RunId));
                var doomed = Path.Combine(store, $"batchjob={jobName}", $"_deleting-{run.RunId}-{Guid.NewGuid():N}");
                if (Directory.Exists(folder))
                {
                    Directory.Move(folder, doomed);
                }

                state.DeleteRun(run.RunId);
                if (Directory.Exists(doomed))
                {
                    Directory.Delete(doomed, recursive: true);
                }

                await stdout.WriteLineAsync($"deleted {jobName} run {run.RunId} ({run.Phase}, {run.Succeeded} of {run.Completions} indexes succeeded)").ConfigureAwait(false);
            }

            var left = Path.Combine(store, $"batchjob={jobName}");
            if (Directory.Exists(left) && !Directory.EnumerateFileSystemEntries(left).Any())
            {
                Directory.Delete(left);
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }
}
