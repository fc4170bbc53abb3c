using System.CommandLine;
using System.Globalization;
using BatchRunner.Backends;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Costs;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Query;
using BatchRunner.Store;
using Microsoft.Extensions.Logging;
using Serilog;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner run SPEC</c>: runs (or resumes) a BatchJob on the backend its spec names, looked up among the CLI's
/// (<see cref="CliBackends"/>), and follows it to the end. Every backend is driven the same way
/// (<see cref="BackendDriver"/>); a backend's state is kept beside the store, so running the same spec again
/// follows the same run and submits nothing twice. Ctrl-C stops local processes with the CLI; work submitted to a
/// remote backend goes on, and running the spec again picks it up.
/// </summary>
internal static class RunCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr, IEnumerable<IBatchBackend>? extra = null)
    {
        var spec = new Argument<string>("spec") { Description = "BatchJob file (YAML or JSON), or - for standard input" };
        var noCompact = new Option<bool>("--no-compact") { Description = "Leave the results as raw files (they are compacted to Parquet when the run finishes)" };
        var noReuse = new Option<bool>("--no-reuse") { Description = "Run every index, even one whose identical point an earlier run computed (as spec.reuse: false)" };
        var prices = new Option<string?>("--prices") { Description = "A JSON file of prices over the defaults, for spec.budget (as for batchrunner cost)" };
        var command = new Command("run", "Run a BatchJob on this machine (or on AWS Batch with backend aws-batch) and wait; running the same spec again resumes it") { spec, noCompact, noReuse, prices };
        command.SetAction(async (parsed, cancellation) =>
        {
            var job = await SpecFile.LoadAsync(parsed.GetRequiredValue(spec), stderr, cancellation).ConfigureAwait(false);
            if (job is null)
            {
                return ExitCodes.InvalidInput;
            }

            if (parsed.GetValue(noReuse))
            {
                job = job with { Spec = job.Spec with { Reuse = false } };
            }

            if (await CostCommand.LoadPricesAsync(parsed.GetValue(prices), stderr, cancellation).ConfigureAwait(false) is not { } table)
            {
                return ExitCodes.InvalidInput;
            }

            var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            var backends = CliBackends.Create(store, Environment.GetEnvironmentVariable, cancellation, extra);
            return await RunAsync(job, backends, store, !parsed.GetValue(noCompact), stdout, stderr, cancellation, prices: table).ConfigureAwait(false);
        });
        return command;
    }

    /// <param name="indexes">All of the run, or the indexes a rerun gives new attempts (<paramref name="rerun"/>: which rerun it is).</param>
    /// <param name="prices">The prices a <c>spec.budget</c> projects the run's cost at (default: the price table's defaults).</param>
    public static async Task<int> RunAsync(
        BatchJob job, BackendRegistry backends, string store, bool compact, TextWriter stdout, TextWriter stderr, CancellationToken cancellation,
        IndexSelection? indexes = null, int rerun = 0, PriceTable? prices = null)
    {
        if (!backends.TryResolve(job.Spec.Backend, out var backend, out var unavailable))
        {
            await SpecFile.ReportAsync(job.Metadata.Name, [unavailable], stderr).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var resultsStore = backend.ResultsStoreOf(job, store);
        if (resultsStore == store && job.Spec.Results.Uri is { } uri && !uri.StartsWith("file://", StringComparison.Ordinal))
        {
            Log.Warning("spec.results.uri {Uri} is for cluster backends; the {Backend} backend writes results to the store at {Store}", uri, job.Spec.Backend.Name, store);
        }

        var runId = RunIdentity.For(job);
        var run = new BackendRun(job, job.Metadata.Namespace, job.Metadata.Name, runId, 0, runId, indexes ?? IndexSelection.All, null, AllowSubmit: true) { Rerun = rerun };
        var stateFile = BackendStateFile.For(store, run, backend.Backend.Name);
        if (backend.Backend != Backend.Local)
        {
            // The local state keeps its runs' specs; a run elsewhere keeps its spec beside its state, for `rerun NAME`.
            Directory.CreateDirectory(Path.GetDirectoryName(stateFile.Path)!);
            await File.WriteAllTextAsync(Path.ChangeExtension(stateFile.Path, SpecExtension), RunIdentity.SpecJson(job), cancellation).ConfigureAwait(false);
        }

        var snapshot = new ProgressSnapshot(job.Spec.Completions, 0, 0, 0, 0, null);
        var started = TimeProvider.System.GetUtcNow();
        var finishedAtStart = -1;
        FollowOutcome outcome;
        await using (var display = new ProgressDisplay(stderr, job.Metadata.Name, TimeProvider.System))
        {
            display.Start(() => Volatile.Read(ref snapshot));
            try
            {
                outcome = await BackendDriver.FollowAsync(
                    backend, run, stateFile, progress =>
                    {
                        var finished = progress.Succeeded + progress.Failed;
                        finishedAtStart = finishedAtStart < 0 ? finished : finishedAtStart;
                        var elapsed = TimeProvider.System.GetUtcNow() - started;
                        TimeSpan? remaining = finished > finishedAtStart && progress.Total > finished
                            ? elapsed / (finished - finishedAtStart) * (progress.Total - finished)
                            : progress.Total == finished ? TimeSpan.Zero : null;
                        Volatile.Write(ref snapshot, new ProgressSnapshot(progress.Total, progress.Succeeded, progress.Failed, progress.Active, 0, remaining));
                    }, TimeProvider.System, CliApplication.Logs.CreateLogger(nameof(BackendDriver)), cancellation, prices: prices ?? PriceTable.Defaults).ConfigureAwait(false);
            }
            catch (InvalidSpecException e)
            {
                await display.DisposeAsync().ConfigureAwait(false);
                await SpecFile.ReportAsync(job.Metadata.Name, e.Errors, stderr).ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }
            catch (RunBusyException e)
            {
                await display.DisposeAsync().ConfigureAwait(false);
                await stderr.WriteLineAsync(e.Message).ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }
        }

        var last = outcome.Progress;
        if (outcome.StoppedFollowing)
        {
            await stderr.WriteLineAsync(
                $"Stopped following {job.Metadata.Name} run {runId}; what was submitted goes on in {backend.Backend.Name}. Run the same spec again to follow it.").ConfigureAwait(false);
            return ExitCodes.Cancelled;
        }

        if (outcome.Refused)
        {
            await stderr.WriteLineAsync($"{job.Metadata.Name}: {TerminalText.Safe(last.Message)}").ConfigureAwait(false);
            return last.RefusedForInput ? ExitCodes.InvalidInput : ExitCodes.JobFailed;
        }

        if (compact && resultsStore == store && last.Phase is RunPhase.Succeeded or RunPhase.Failed)
        {
            await CompactAsync(job, runId, store, cancellation).ConfigureAwait(false);
        }

        await WriteSummaryAsync(job, runId, last, resultsStore, store, stdout).ConfigureAwait(false);
        return last.Phase switch
        {
            _ when last.FailureReason == BackendReasons.RunnerFailed => ExitCodes.StoreUnusable,
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
            await new ResultsCompactor(CliApplication.Logs.CreateLogger<ResultsCompactor>(), TimeProvider.System)
                .CompactAsync(new LocalResultsStore(store), job.Metadata.Name, runId, force: false, cancellation).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Whatever went wrong, the run's outcome stands and nothing was lost: the raw files are still read.
            Log.Warning("Run {RunId} of {BatchJob} was not compacted ({Error}); its raw files are read, and `batchrunner compact {BatchJob}` tries again", runId, job.Metadata.Name, e.Message, job.Metadata.Name);
        }
    }

    private static async Task WriteSummaryAsync(BatchJob job, string runId, BackendProgress progress, string? resultsStore, string store, TextWriter stdout)
    {
        var summary = progress.Summary is { } what ? $" ({what})" : "";
        await stdout.WriteLineAsync(string.Create(
            CultureInfo.InvariantCulture,
            $"{job.Metadata.Name} run {runId}: {progress.Phase}, {progress.Succeeded} of {progress.Total} indexes succeeded, {progress.Failed} failed{summary}"))
            .ConfigureAwait(false);
        if (progress.FailureMessage is { } reason && (progress.Failures.Count == 0 || progress.Phase != RunPhase.Failed || progress.FailureReason == BudgetStanding.BudgetReached))
        {
            await stdout.WriteLineAsync($"  reason: {TerminalText.Safe(reason)}").ConfigureAwait(false);
        }

        foreach (var failed in progress.Failures.Take(10))
        {
            var attempts = failed.Attempts > 0 ? string.Create(CultureInfo.InvariantCulture, $" after {failed.Attempts} attempt(s)") : "";
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  index {failed.Index} failed{attempts}: {TerminalText.Safe(failed.Reason ?? "")}")).ConfigureAwait(false);
        }

        if (progress.Failed > 10)
        {
            await stdout.WriteLineAsync($"  … and {progress.Failed - 10} more: failed indexes {progress.FailedIndexes} (batchrunner status {job.Metadata.Name})").ConfigureAwait(false);
        }

        if (resultsStore == store && progress.Succeeded > 0)
        {
            foreach (var warning in OutputWarnings(store, job.Metadata.Name, runId))
            {
                await stdout.WriteLineAsync($"  warning: {warning}").ConfigureAwait(false);
            }
        }

        await stdout.WriteLineAsync(resultsStore == store
            ? $"  results: batchrunner query \"SELECT * FROM results WHERE batchjob = '{job.Metadata.Name}' AND run = '{runId}'\"{StoreHint(store)}"
            : $"  results: {resultsStore}/batchjob={job.Metadata.Name}/run={runId}/ (state kept in {store})").ConfigureAwait(false);
    }

    /// <summary>
    /// What the run's succeeded attempts say of their outputs: indexes that wrote nothing, and lines of results that
    /// were not records (left out of the results table). Read from the ledger rows themselves (small files, one per
    /// attempt), not through the query engine: opening DuckDB's views over a run cost about 1.4 s and 600 MB for 2,000
    /// indexes, more than the run. A row that cannot be read counts for nothing here; the run's own outcome is printed.
    /// </summary>
    internal static IEnumerable<string> OutputWarnings(string store, string name, string runId)
    {
        long empty = 0, malformed = 0, malformedIndexes = 0, succeeded = 0;
        var run = Path.Combine(store, StoreLayout.RunPrefix(name, runId));
        var ledgers = Directory.Exists(run)
            ? Directory.EnumerateDirectories(run, "index=*").SelectMany(i => Directory.EnumerateDirectories(i, "attempt=*")).Select(a => Path.Combine(a, StoreLayout.LedgerFile))
            : [];
        foreach (var ledger in ledgers)
        {
            LedgerRow row;
            try
            {
                row = LedgerRow.FromJson(File.ReadAllBytes(ledger));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
            {
                continue;
            }

            if (row.Status == "succeeded")
            {
                succeeded++;
                empty += row.OutputFiles == 0 ? 1 : 0;
                malformed += row.OutputMalformed ?? 0;
                malformedIndexes += row.OutputMalformed > 0 ? 1 : 0;
            }
        }

        var where = $"batchjob = '{name}' AND run = '{runId}' AND status = 'succeeded'";
        if (empty > 0)
        {
            yield return string.Create(CultureInfo.InvariantCulture,
                $"{empty} of {succeeded} succeeded attempts wrote no output (batchrunner query \"SELECT \\\"index\\\" FROM indexes WHERE {where} AND output_files = 0\")");
        }

        if (malformed > 0)
        {
            yield return string.Create(CultureInfo.InvariantCulture,
                $"{malformed} output line(s) in {malformedIndexes} index(es) were not records and are not in the results table (batchrunner query \"SELECT \\\"index\\\", output_note FROM indexes WHERE {where} AND output_malformed > 0\")");
        }
    }

    private const string SpecExtension = ".spec.json";

    /// <summary>Runs of <paramref name="name"/> this CLI followed on other backends than local: run id, spec and when.</summary>
    internal static IEnumerable<(string RunId, string SpecJson, DateTimeOffset At)> SpecsRunElsewhere(string store, string ns, string name)
    {
        if (!Directory.Exists(store))
        {
            yield break;
        }

        foreach (var backendFolder in Directory.EnumerateDirectories(store))
        {
            var folder = Path.Combine(backendFolder, ns, name);
            if (!Directory.Exists(folder))
            {
                continue;
            }

            foreach (var file in Directory.EnumerateFiles(folder, "*" + SpecExtension))
            {
                yield return (Path.GetFileName(file)[..^SpecExtension.Length], File.ReadAllText(file), File.GetLastWriteTimeUtc(file));
            }
        }
    }

    internal static string StoreHint(string store) =>
        Path.GetFullPath(StoreLocation.DefaultFolder) == store && Environment.GetEnvironmentVariable(StoreLocation.EnvironmentVariable) is null or ""
            ? ""
            : $" --store {store}";
}
