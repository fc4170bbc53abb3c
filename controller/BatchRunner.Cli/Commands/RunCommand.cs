using System.CommandLine;
using System.Globalization;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Query;
using BatchRunner.Local.Store;
using Serilog;

namespace BatchRunner.Cli.Commands;

/// <summary><c>batchrunner run SPEC</c>: runs (or resumes) a BatchJob on the embedded default and waits for it.</summary>
internal static class RunCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var spec = new Argument<string>("spec") { Description = "BatchJob file (YAML or JSON), or - for standard input" };
        var noCompact = new Option<bool>("--no-compact") { Description = "Leave the results as raw files (they are compacted to Parquet when the run finishes)" };
        var command = new Command("run", "Run a BatchJob on this machine (or on AWS Batch with backend aws-batch) and wait; running the same spec again resumes it") { spec, noCompact };
        command.SetAction(async (parsed, cancellation) =>
        {
            var job = await SpecFile.LoadAsync(parsed.GetRequiredValue(spec), stderr, cancellation).ConfigureAwait(false);
            if (job is null)
            {
                return ExitCodes.InvalidInput;
            }

            return await RunAsync(job, StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption)), !parsed.GetValue(noCompact), stdout, stderr, cancellation).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(BatchJob job, string store, bool compact, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        if (job.Spec.Backend == Backend.AwsBatch)
        {
            return await AwsBatchRun.RunAsync(job, store, stdout, stderr, Environment.GetEnvironmentVariable, cancellation).ConfigureAwait(false);
        }

        if (job.Spec.Backend != Backend.Local)
        {
            await stderr.WriteLineAsync(
                $"spec.backend: {job.Spec.Backend} jobs are dispatched by the BatchRunner controller; `batchrunner run` runs backends local and aws-batch. " +
                "Set spec.backend: local (or leave it out) to run it here.").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        if (job.Spec.Results.Uri is { } uri && !uri.StartsWith("file://", StringComparison.Ordinal))
        {
            Log.Warning("spec.results.uri {Uri} is for cluster backends; the local backend writes results to the store at {Store}", uri, store);
        }

        var executor = new LocalExecutor(new LocalRunOptions { StoreRoot = store }, TimeProvider.System, Log.Logger);
        await using var display = new ProgressDisplay(stderr, job.Metadata.Name, TimeProvider.System);
        RunReport report;
        try
        {
            report = await executor.RunAsync(job, display.Start, cancellation).ConfigureAwait(false);
        }
        catch (InvalidSpecException e)
        {
            await SpecFile.ReportAsync(job.Metadata.Name, e.Errors, stderr).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }
        catch (RunBusyException e)
        {
            await stderr.WriteLineAsync(e.Message).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        await display.DisposeAsync().ConfigureAwait(false);
        if (compact && report.Phase is RunPhase.Succeeded or RunPhase.Failed)
        {
            await CompactAsync(job, report.RunId, store, cancellation).ConfigureAwait(false);
        }

        await WriteSummaryAsync(job, report, store, stdout).ConfigureAwait(false);
        return report.Phase switch
        {
            _ when report.RunnerFailed => ExitCodes.StoreUnusable,
            RunPhase.Succeeded => ExitCodes.Succeeded,
            RunPhase.Cancelled => ExitCodes.Cancelled,
            _ => ExitCodes.JobFailed,
        };
    }

    /// <summary>
    /// Compacts the finished run to Parquet. Its outcome does not change the run's: a compaction that fails leaves
    /// the raw files, which queries keep reading, and <c>batchrunner compact</c> can try again.
    /// </summary>
    private static async Task CompactAsync(BatchJob job, string runId, string store, CancellationToken cancellation)
    {
        try
        {
            await new ResultsCompactor(Log.Logger, TimeProvider.System)
                .CompactAsync(new LocalResultsStore(store), job.Metadata.Name, runId, force: false, cancellation).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Whatever went wrong, the run's outcome stands and nothing was lost: the raw files are still read.
            Log.Warning("Run {RunId} of {BatchJob} was not compacted ({Error}); its raw files are read, and `batchrunner compact {BatchJob}` tries again", runId, job.Metadata.Name, e.Message, job.Metadata.Name);
        }
    }

    private static async Task WriteSummaryAsync(BatchJob job, RunReport report, string store, TextWriter stdout)
    {
        var duration = ProgressDisplay.FormatDuration(report.Duration);
        await stdout.WriteLineAsync(string.Create(
            CultureInfo.InvariantCulture,
            $"{job.Metadata.Name} run {report.RunId}: {report.Phase}, {report.Succeeded} of {report.Total} indexes succeeded, {report.Failed} failed ({report.AttemptsStarted} attempts in {duration})"))
            .ConfigureAwait(false);
        if (report.Reason is not null)
        {
            await stdout.WriteLineAsync($"  reason: {TerminalText.Safe(report.Reason)}").ConfigureAwait(false);
        }

        foreach (var failed in report.FailedIndexes.Take(10))
        {
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  index {failed.Index} failed after {failed.Attempts} attempt(s): {TerminalText.Safe(failed.LastReason ?? "")}")).ConfigureAwait(false);
        }

        if (report.Failed > 10)
        {
            await stdout.WriteLineAsync($"  … and {report.Failed - 10} more: batchrunner status {job.Metadata.Name}").ConfigureAwait(false);
        }

        await stdout.WriteLineAsync($"  results: batchrunner query \"SELECT * FROM results WHERE batchjob = '{job.Metadata.Name}' AND run = '{report.RunId}'\"{StoreHint(store)}").ConfigureAwait(false);
    }

    internal static string StoreHint(string store) =>
        Path.GetFullPath(StoreLocation.DefaultFolder) == store && Environment.GetEnvironmentVariable(StoreLocation.EnvironmentVariable) is null or ""
            ? ""
            : $" --store {store}";
}
