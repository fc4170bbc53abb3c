using System.CommandLine;
using System.Globalization;
using BatchRunner.Core.Store;
using BatchRunner.Reports;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner report NAME</c>: one run of a BatchJob as one HTML file that opens offline — each output against each
/// swept parameter, failures by parameter, durations, attempts over time by backend, cost, and the failed indexes with
/// their logs — from the local store or a store the cluster backends wrote.
/// </summary>
internal static class ReportCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("name") { Description = "BatchJob name" };
        var ns = new Option<string>("--namespace", "-n") { Description = "The BatchJob's namespace", DefaultValueFactory = _ => "default" };
        var runOption = new Option<string?>("--run") { Description = "The run (default: the BatchJob's latest in the store)" };
        var output = new Option<string?>("--output", "-o") { Description = "The HTML file to write (default: NAME-RUN.html here)" };
        var prices = new Option<string?>("--prices") { Description = "A JSON file of prices over the defaults (as for batchrunner cost)" };
        var results = new Option<string?>("--results") { Description = "A store the cluster backends wrote: s3://bucket/prefix or a folder (S3 settings from BatchRunner__Results__*)" };
        var command = new Command("report", "Write one run of a BatchJob as an HTML report that opens offline: plots of its outputs, failures, time and cost")
        {
            name, ns, runOption, output, prices, results,
        };
        command.SetAction(async (parsed, cancellation) =>
        {
            var (jobName, space) = (parsed.GetRequiredValue(name), parsed.GetRequiredValue(ns));
            if (!await BatchJobName.CheckAsync("report", jobName, stderr).ConfigureAwait(false))
            {
                return ExitCodes.InvalidInput;
            }

            var given = parsed.GetValue(prices);
            if (await CostCommand.LoadPricesAsync(given, stderr, cancellation).ConfigureAwait(false) is not { } table)
            {
                return ExitCodes.InvalidInput;
            }

            string? runId, error;
            IResultsStore store;
            try
            {
                if (parsed.GetValue(results) is { } location)
                {
                    store = StoreLocation.OpenResults(location);
                    (runId, error) = await LogsCommand.FindRunAsync(store, jobName, parsed.GetValue(runOption), cancellation).ConfigureAwait(false);
                }
                else
                {
                    var root = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
                    store = new BatchRunner.Store.LocalResultsStore(root);
                    (_, runId, error) = RerunCommand.FindRun(root, space, jobName, parsed.GetValue(runOption));
                }
            }
            catch (FormatException e)
            {
                await stderr.WriteLineAsync($"report: --results: {e.Message}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            using var disposeStore = store as IDisposable;
            if (runId is null)
            {
                await stderr.WriteLineAsync($"report: {error}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            var request = new ReportRequest(jobName, space, runId, store.Location, table,
                $"{(given is null ? "the defaults" : $"{given} over the defaults")} ({BatchRunner.Core.Costs.PriceTable.DefaultsAsOf})",
                (index, attempt) => LogsOf(store, jobName, runId, index, attempt), DateTimeOffset.UtcNow);
            var report = await SweepReports.BuildAsync(store, request, cancellation).ConfigureAwait(false);
            if (report is null)
            {
                await stderr.WriteLineAsync($"report: no attempt of {jobName} run {runId} in namespace {space} in {store.Location}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            var path = Path.GetFullPath(parsed.GetValue(output) ?? $"{jobName}-{runId}.html");
            var written = await WriteAsync(report, path, cancellation).ConfigureAwait(false);
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"report: {path} ({written / 1024.0:0} KiB): {report.Summary.Indexes} indexes, {report.Summary.Failed} failed, {report.Summary.ResultRows} result rows, cost {(report.Cost.Total is { } cost ? $"${cost:0.######}" : "unknown (no price for a backend)")}")).ConfigureAwait(false);
            return ExitCodes.Succeeded;
        });
        return command;
    }

    /// <summary>Written beside its destination and moved over it, so an interrupted report never leaves half a file.</summary>
    private static async Task<long> WriteAsync(SweepReport report, string path, CancellationToken cancellation)
    {
        var partial = path + ".partial";
        try
        {
            await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await ReportPage.WriteAsync(report, file, cancellation).ConfigureAwait(false);
            }

            File.Move(partial, path, overwrite: true);
            return new FileInfo(path).Length;
        }
        finally
        {
            File.Delete(partial);
        }
    }

    /// <summary>Where an attempt's logs are: a file:// link into the local store, else the store's own location of them.</summary>
    private static string LogsOf(IResultsStore store, string name, string run, long index, long attempt)
    {
        var key = $"{StoreLayout.AttemptPrefix(name, run, (int)index, (int)attempt)}/{StoreLayout.LogsFolder}/";
        return store.LocalRoot is { } root
            ? new Uri(Path.Combine(root, key)).AbsoluteUri
            : $"{store.Location.TrimEnd('/')}/{key}";
    }
}
