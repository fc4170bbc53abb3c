using System.CommandLine;
using System.Globalization;
using BatchRunner.Aws.S3;
using BatchRunner.Core.Store;
using BatchRunner.Local.Query;
using BatchRunner.Store;
using Microsoft.Extensions.Logging;
using Serilog;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner compact [NAME] [--run ID] [--results s3://bucket/prefix]</c>: compacts finished runs to Parquet,
/// in the local store or in S3 (settings from <c>BatchRunner__Results__*</c> or the options here).
/// </summary>
internal static class CompactCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string?>("name") { Description = "BatchJob name; every BatchJob in the store when left out", Arity = ArgumentArity.ZeroOrOne };
        var run = new Option<string?>("--run") { Description = "Only this run id" };
        var results = new Option<string?>("--results") { Description = "s3://bucket/prefix or a folder; default the local store (--store)" };
        var region = new Option<string?>("--region") { Description = "S3 region (default BatchRunner__Results__Region, then the SDK's)" };
        var endpoint = new Option<string?>("--endpoint-url") { Description = "S3-compatible endpoint (default BatchRunner__Results__EndpointUrl)" };
        var pathStyle = new Option<bool>("--force-path-style") { Description = "Path-style S3 addressing, as S3-compatible servers need" };
        var force = new Option<bool>("--force") { Description = "Compact a run whose manifest still says Running (its runner died)" };
        var command = new Command("compact", "Compact finished runs' results to Parquet; queries then read the Parquet")
        {
            name, run, results, region, endpoint, pathStyle, force,
        };
        command.SetAction(async (parsed, cancellation) =>
        {
            var fromEnvironment = ResultsOptions.FromEnvironment(Environment.GetEnvironmentVariable);
            var options = new ResultsOptions
            {
                Uri = parsed.GetValue(results) ?? StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption)),
                Region = parsed.GetValue(region) ?? fromEnvironment.Region,
                EndpointUrl = parsed.GetValue(endpoint) ?? fromEnvironment.EndpointUrl,
                ForcePathStyle = parsed.GetValue(pathStyle) || fromEnvironment.ForcePathStyle,
            };
            IResultsStore store;
            try
            {
                store = ResultsStores.Open(options.Uri, options, path => new LocalResultsStore(path));
            }
            catch (FormatException e)
            {
                await stderr.WriteLineAsync($"--results: {e.Message}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            try
            {
                return await CompactAsync(store, parsed.GetValue(name), parsed.GetValue(run), parsed.GetValue(force), stdout, stderr, cancellation).ConfigureAwait(false);
            }
            finally
            {
                (store as IDisposable)?.Dispose();
            }
        });
        return command;
    }

    private static async Task<int> CompactAsync(IResultsStore store, string? name, string? runId, bool force, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var runs = (await ResultsCompactor.FindRunsAsync(store, name, cancellation).ConfigureAwait(false))
            .Where(r => runId is null || r.RunId == runId)
            .ToList();
        if (runs.Count == 0)
        {
            await stderr.WriteLineAsync($"compact: no run{(name is null ? "" : $" of {name}")}{(runId is null ? "" : $" with id {runId}")} in {store.Location}").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var compactor = new ResultsCompactor(CliApplication.Logs.CreateLogger<ResultsCompactor>(), TimeProvider.System);
        var failures = 0;
        foreach (var (batchJob, id) in runs)
        {
            try
            {
                var report = await compactor.CompactAsync(store, batchJob, id, force, cancellation).ConfigureAwait(false);
                await stdout.WriteLineAsync(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{batchJob} run {id}: {report.Indexes} attempts, {report.Results} result rows → {report.ResultFiles + 1} Parquet file(s), {report.ParquetBytes:N0} bytes ({report.Duration.TotalSeconds:F2}s)"))
                    .ConfigureAwait(false);
            }
            catch (Exception e) when (e is CompactionRefusedException or IOException or DuckDB.NET.Data.DuckDBException or Amazon.Runtime.AmazonServiceException or Amazon.Runtime.AmazonClientException)
            {
                failures++;
                await stderr.WriteLineAsync($"{batchJob} run {id}: not compacted ({e.Message}); its raw files are still read").ConfigureAwait(false);
            }
        }

        return failures == 0 ? ExitCodes.Succeeded : ExitCodes.JobFailed;
    }
}
