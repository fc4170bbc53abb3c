using System.CommandLine;
using System.Globalization;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Query;
using BatchRunner.Local.State;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner rerun NAME --failed | --index 3,7-9 | --where SQL</c>: gives exactly the chosen indexes of a finished
/// run new attempts, in the same run and on the backend it ran on, and follows them as <c>run</c> does. The table then
/// shows each index's last succeeded attempt. The run is found in the store by name (its latest, or <c>--run</c>),
/// with the spec it was run with, so no file is needed.
/// </summary>
internal static class RerunCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr, IEnumerable<IBatchBackend>? extra = null)
    {
        var name = new Argument<string>("name") { Description = "BatchJob name" };
        var ns = new Option<string>("--namespace", "-n") { Description = "The BatchJob's namespace", DefaultValueFactory = _ => "default" };
        var runOption = new Option<string?>("--run") { Description = "The run (default: the BatchJob's latest in the store)" };
        var failed = new Option<bool>("--failed") { Description = "Rerun the indexes that failed" };
        var index = new Option<string?>("--index") { Description = "Rerun these indexes: 3,7-9" };
        var where = new Option<string?>("--where") { Description = "Rerun the indexes with an attempt matching this SQL condition over the indexes table, e.g. \"status = 'timed_out'\" or \"servers = 4\"" };
        var noCompact = new Option<bool>("--no-compact") { Description = "Leave the results as raw files" };
        var cluster = new Option<bool>("--cluster") { Description = "Ask the controller of the cluster kubectl points at to rerun the BatchJob (the batchrunner.io/rerun annotation)" };
        var results = new Option<string?>("--results") { Description = "With --cluster --where: the store the run's ledger is in (s3://bucket/prefix or a folder)" };
        var command = new Command("rerun", "Run chosen indexes of a finished run again, in the same run") { name, ns, runOption, failed, index, where, noCompact, cluster, results };
        command.SetAction(async (parsed, cancellation) =>
        {
            var chosenKinds = (parsed.GetValue(failed) ? 1 : 0) + (parsed.GetValue(index) is null ? 0 : 1) + (parsed.GetValue(where) is null ? 0 : 1);
            if (chosenKinds != 1)
            {
                await stderr.WriteLineAsync("rerun: say which indexes with exactly one of --failed, --index 3,7-9 or --where \"SQL\"").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            if (parsed.GetValue(cluster))
            {
                return await AskClusterAsync(parsed.GetRequiredValue(ns), parsed.GetRequiredValue(name), new RerunChoice(parsed.GetValue(failed), parsed.GetValue(index), parsed.GetValue(where)),
                    parsed.GetValue(results), stdout, stderr, cancellation).ConfigureAwait(false);
            }

            var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            var backends = CliBackends.Create(store, Environment.GetEnvironmentVariable, cancellation, extra);
            var choice = new RerunChoice(parsed.GetValue(failed), parsed.GetValue(index), parsed.GetValue(where));
            return await RerunAsync(parsed.GetRequiredValue(ns), parsed.GetRequiredValue(name), parsed.GetValue(runOption), choice, backends, store,
                !parsed.GetValue(noCompact), stdout, stderr, cancellation).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>
    /// A rerun on a cluster: the request goes on the BatchJob as its <c>batchrunner.io/rerun</c> annotation, stamped with
    /// the time so that asking the same again is a new request; the controller takes it once the run has finished and
    /// says what came of it in the BatchJob's Rerun condition.
    /// </summary>
    private static async Task<int> AskClusterAsync(string ns, string name, RerunChoice choice, string? results, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var what = choice.Failed ? RerunRequest.Failed : choice.Index?.Replace(" ", "", StringComparison.Ordinal);
        if (choice.Index is not null && IndexRanges.ParseWithin(choice.Index, int.MaxValue, out var error) is null)
        {
            await stderr.WriteLineAsync($"rerun: --index: {error}").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        if (choice.Where is { } condition)
        {
            // The condition is read where the run's ledger is, for the run the BatchJob's status names; the annotation
            // then carries the indexes it chose.
            if (results is null)
            {
                await stderr.WriteLineAsync("rerun: --where with --cluster reads the run's ledger: give its store with --results s3://bucket/prefix (or the folder)").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            var batchJob = await Kubectl.JsonAsync(["get", "batchjobs.batchrunner.io", name, "-n", ns, "-o", "json"], stderr, cancellation).ConfigureAwait(false);
            if (batchJob is null)
            {
                return ExitCodes.InvalidInput;
            }

            if (batchJob["status"]?["runId"]?.GetValue<string>() is not { } runId)
            {
                await stderr.WriteLineAsync($"rerun: {ns}/{name} has not dispatched a run yet").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            var (chosen, whereError) = await MatchingAsync(results, results, name, runId, condition, cancellation).ConfigureAwait(false);
            if (whereError is not null)
            {
                await stderr.WriteLineAsync($"rerun: {whereError}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            what = IndexRanges.Format(chosen!);
        }

        var request = $"{what}@{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ}";
        var answer = await Kubectl.JsonAsync(
            ["annotate", "batchjobs.batchrunner.io", name, "-n", ns, $"batchrunner.io/rerun={request}", "--overwrite", "-o", "json"], stderr, cancellation).ConfigureAwait(false);
        if (answer is null)
        {
            return ExitCodes.InvalidInput;
        }

        await stdout.WriteLineAsync($"Asked for a rerun of {ns}/{name} ({request}); `kubectl describe bj {name} -n {ns}` shows its Rerun condition").ConfigureAwait(false);
        return ExitCodes.Succeeded;
    }

    /// <summary>Which indexes to rerun: exactly one of the three is given.</summary>
    internal sealed record RerunChoice(bool Failed, string? Index, string? Where);

    /// <summary>Finds the run, checks it has finished, resolves the choice against it, and runs the chosen indexes again.</summary>
    internal static async Task<int> RerunAsync(
        string ns, string jobName, string? runId, RerunChoice choice, BackendRegistry backends, string store, bool compact,
        TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var found = FindRun(store, ns, jobName, runId);
        if (found.Error is { } missing)
        {
            await stderr.WriteLineAsync($"rerun: {missing}").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        (var job, runId) = (found.Job!, found.RunId!);
        if (!backends.TryResolve(job.Spec.Backend, out var backend, out var unavailable))
        {
            await SpecFile.ReportAsync(jobName, [unavailable], stderr).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        // Where the run stands on its backend: a run still going is not rerun (its indexes may yet succeed).
        var standing = await BackendDriver.LookAsync(backend, job, runId, store, CliApplication.Logs.CreateLogger(nameof(RerunCommand)), cancellation).ConfigureAwait(false);
        if (!standing.IsTerminal || LocalExecutor.HasLiveRunner(store, runId))
        {
            await stderr.WriteLineAsync($"rerun: {jobName} run {runId} is still {standing.Phase.ToString().ToLowerInvariant()}; wait for it to finish, or `batchrunner cancel {jobName}` first").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var (chosen, error) = choice.Failed ? Failed(standing, jobName, runId)
            : choice.Index is { } ranges ? Listed(ranges, job.Spec.Completions)
            : await MatchingAsync(store, backend.ResultsStoreOf(job, store) ?? store, jobName, runId, choice.Where!, cancellation).ConfigureAwait(false);
        if (error is not null)
        {
            await stderr.WriteLineAsync($"rerun: {error}").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var selection = IndexSelection.Of(chosen!);
        await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"Rerunning {chosen!.Count} of {job.Spec.Completions} indexes of {jobName} run {runId} on {backend.Backend.Name}: {selection.Ranges}")).ConfigureAwait(false);
        return await RunCommand.RunAsync(job, backends, store, compact, stdout, stderr, cancellation,
            selection, standing.Reruns + 1).ConfigureAwait(false);
    }

    /// <summary>The run to rerun with the spec it ran with: the local state's runs, and those other backends ran from this CLI.</summary>
    internal static (BatchJob? Job, string? RunId, string? Error) FindRun(string store, string ns, string name, string? runId)
    {
        var runs = new List<(string RunId, string SpecJson, DateTimeOffset At)>();
        if (File.Exists(Path.Combine(store, RunStateStore.FileName)))
        {
            using var state = RunStateStore.Open(store);
            runs.AddRange(state.ListRuns(name, ns).Select(r => (r.RunId, state.GetSpecJson(r.RunId) ?? "", r.CreatedAt)));
        }

        runs.AddRange(RunCommand.SpecsRunElsewhere(store, ns, name));
        var candidates = runs.Where(r => runId is null || r.RunId == runId).OrderByDescending(r => r.At).ToList();
        if (candidates.Count == 0)
        {
            return (null, null, runId is null
                ? $"no run of {name} in namespace {ns} in the store {store} (batchrunner status lists the runs)"
                : $"{name} has no run {runId} in namespace {ns} in the store {store} (batchrunner status {name} lists its runs)");
        }

        try
        {
            return (StoredSpec.Parse(candidates[0].SpecJson), candidates[0].RunId, null);
        }
        catch (InvalidSpecException e)
        {
            return (null, null, $"the spec stored with {name} run {candidates[0].RunId} cannot be read: {e.Errors[0]}");
        }
    }

    private static (IReadOnlyList<int>?, string?) Failed(BackendProgress standing, string name, string runId) =>
        standing.FailedIndexesTruncated
            ? (null, $"{name} run {runId} has {standing.Failed} failed indexes, more than its backend's record lists; choose them with --where over the ledger (batchrunner query lists them)")
        : IndexRanges.Parse(standing.FailedIndexes) is { Count: > 0 } failed
            ? (failed, null)
            : (null, $"{name} run {runId} has no failed indexes ({standing.Phase}, {standing.Succeeded} of {standing.Total} succeeded)");

    private static (IReadOnlyList<int>?, string?) Listed(string ranges, int total) =>
        IndexRanges.ParseWithin(ranges, total, out var error) is { } listed ? (listed, null) : (null, $"--index: {error}");

    /// <summary>Indexes with an attempt that matches the condition, read through the same sandboxed engine as <c>query</c>.</summary>
    private static async Task<(IReadOnlyList<int>?, string?)> MatchingAsync(string store, string resultsStore, string name, string runId, string condition, CancellationToken cancellation)
    {
        var sql = $"SELECT DISTINCT \"index\" FROM indexes WHERE batchjob = {ResultsQueryEngine.Literal(name)} AND run = {ResultsQueryEngine.Literal(runId)} AND (\n{condition}\n) ORDER BY 1";
        QueryResult answer;
        try
        {
            answer = await QueryCommand.SelectAsync(resultsStore.StartsWith("s3://", StringComparison.Ordinal) ? resultsStore : store, sql, TextWriter.Null, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DuckDB.NET.Data.DuckDBException or QueryRefusedException)
        {
            return (null, $"--where is not a condition over the indexes table: {TerminalText.Safe(e.Message.Split('\n')[0])}");
        }

        return answer.Rows.Count == 0
            ? (null, $"--where selects no index of {name} run {runId}")
            : (answer.Rows.Select(r => Convert.ToInt32(r[0], CultureInfo.InvariantCulture)).ToList(), null);
    }
}
