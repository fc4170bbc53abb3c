using Microsoft.Extensions.Logging;
using System.CommandLine;
using System.Globalization;
using BatchRunner.Aws.Athena;
using Amazon.Runtime;
using BatchRunner.Aws.Protocol;
using BatchRunner.Aws.S3;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Cli.Athena;
using BatchRunner.Cli.Output;
using BatchRunner.Local.Query;
using DuckDB.NET.Data;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner query SQL</c>: SQL over the tables <c>results</c> and <c>indexes</c>, with DuckDB over the local
/// store (the default) or over an S3 store (<c>--store s3://bucket/prefix</c>, read through a local copy), or with
/// Athena over the S3 store (<c>--engine athena</c>, after <c>batchrunner athena setup</c>); the same SQL gives the
/// same rows on all of them.
/// </summary>
public static class QueryCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr) => Create(stdout, stderr, options => AthenaApiClient.Create(options));

    /// <param name="connect">Makes the Athena client (tests point it at a stub).</param>
    public static Command Create(TextWriter stdout, TextWriter stderr, Func<AthenaOptions, IAthenaApi> connect)
    {
        var sql = new Argument<string>("sql") { Description = "SQL over the tables results (one row per result row, parameters as columns) and indexes (one row per attempt)" };
        var format = new Option<string>("--format", "-f") { Description = "table, csv or json", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "csv", "json");
        var engine = new Option<string>("--engine", "-e") { Description = "duckdb (the local store) or athena (the S3 store, through Athena)", DefaultValueFactory = _ => "duckdb" };
        engine.AcceptOnlyFromAmong("duckdb", "athena");
        var timeout = new Option<double?>("--timeout") { Description = "Stop the query after this many seconds (DuckDB; default: no limit)" };
        timeout.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<double?>() is { } seconds && (seconds <= 0 || seconds > MaxTimeoutSeconds))
            {
                result.AddError($"--timeout must be between 0 and {MaxTimeoutSeconds:N0} seconds, got {seconds}");
            }
        });
        var maxRows = new Option<int>("--max-rows") { Description = "Keep at most this many rows of the answer", DefaultValueFactory = _ => DefaultMaxRows };
        maxRows.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1)
            {
                result.AddError($"--max-rows must be at least 1, got {result.GetValueOrDefault<int>()}");
            }
        });
        var athena = new AthenaCliSettings();
        var command = new Command("query", "Query the results of every run in the store with SQL (one statement that only reads)") { sql, format, engine, timeout, maxRows };
        foreach (var option in athena.All)
        {
            command.Add(option);
        }

        command.SetAction(async (parsed, cancellation) =>
        {
            IReadOnlyList<string> columns;
            IReadOnlyList<object?[]> rows;
            string? cost = null;
            if (parsed.GetValue(engine) == "athena")
            {
                var (options, errors) = athena.Resolve(parsed);
                if (options is null)
                {
                    foreach (var error in errors)
                    {
                        await stderr.WriteLineAsync($"query: {error}").ConfigureAwait(false);
                    }

                    return ExitCodes.InvalidInput;
                }

                var api = connect(options);
                try
                {
                    var result = await new AthenaQueryRunner(api, options, log: CliApplication.Logs.CreateLogger<AthenaQueryRunner>()).RunAsync(parsed.GetRequiredValue(sql), cancellation).ConfigureAwait(false);
                    (columns, rows) = (result.Columns, result.Rows);
                    cost = $"{Bytes(result.BytesScanned)} scanned by Athena, query {result.QueryExecutionId}";
                }
                catch (AthenaQueryFailedException e)
                {
                    await stderr.WriteLineAsync($"query: Athena {e.State.ToLowerInvariant()} query {e.QueryExecutionId}: {e.Reason}").ConfigureAwait(false);
                    return e.ErrorCategory == 2 ? ExitCodes.InvalidInput : ExitCodes.JobFailed;
                }
                catch (AwsServiceException e)
                {
                    await stderr.WriteLineAsync($"query: Athena refused the query: {e.ErrorCode}: {e.ServiceMessage}").ConfigureAwait(false);
                    return e.StatusCode is >= 400 and < 500 && !e.IsRetryable ? ExitCodes.InvalidInput : ExitCodes.JobFailed;
                }
                catch (AwsConfigurationException e)
                {
                    await stderr.WriteLineAsync($"query: {e.Message}").ConfigureAwait(false);
                    return ExitCodes.InvalidInput;
                }
                catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
                {
                    await stderr.WriteLineAsync("query: cancelled; the Athena query was stopped").ConfigureAwait(false);
                    return ExitCodes.Cancelled;
                }
                finally
                {
                    (api as IDisposable)?.Dispose();
                }
            }
            else
            {
                var chosen = parsed.GetValue(CliApplication.StoreOption) ?? Environment.GetEnvironmentVariable(StoreLocation.EnvironmentVariable);
                var limit = parsed.GetValue(timeout);
                using var timer = limit is { } seconds ? new CancellationTokenSource(TimeSpan.FromSeconds(seconds)) : new CancellationTokenSource();
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation, timer.Token);
                var query = new UserQuery(parsed.GetRequiredValue(sql), parsed.GetValue(maxRows), stderr);
                QueryResult result;
                try
                {
                    result = chosen is not null && chosen.StartsWith("s3://", StringComparison.Ordinal)
                        ? await QueryS3Async(chosen, query, stop.Token).ConfigureAwait(false)
                        : await QueryLocalAsync(StoreLocation.Resolve(chosen), query, stop.Token).ConfigureAwait(false);
                }
                catch (QueryRefusedException e)
                {
                    await stderr.WriteLineAsync($"query: {e.Message}").ConfigureAwait(false);
                    return ExitCodes.InvalidInput;
                }
                catch (DuckDBException e)
                {
                    await stderr.WriteLineAsync($"query: {e.Message}").ConfigureAwait(false);
                    return ExitCodes.InvalidInput;
                }
                catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellation.IsCancellationRequested)
                {
                    await stderr.WriteLineAsync($"query: stopped after {limit} s (--timeout); nothing was written").ConfigureAwait(false);
                    return ExitCodes.TimedOut;
                }
                catch (FormatException e)
                {
                    await stderr.WriteLineAsync($"--store: {e.Message}").ConfigureAwait(false);
                    return ExitCodes.InvalidInput;
                }
                catch (AmazonServiceException e)
                {
                    await stderr.WriteLineAsync($"query: S3 refused to list or read {chosen}: {e.ErrorCode}: {e.Message}").ConfigureAwait(false);
                    return (int)e.StatusCode is >= 400 and < 500 ? ExitCodes.InvalidInput : ExitCodes.JobFailed;
                }
                catch (AmazonClientException e)
                {
                    await stderr.WriteLineAsync($"query: could not read {chosen}: {e.Message}").ConfigureAwait(false);
                    return ExitCodes.JobFailed;
                }
                catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
                {
                    await stderr.WriteLineAsync("query: cancelled").ConfigureAwait(false);
                    return ExitCodes.Cancelled;
                }

                (columns, rows) = (result.Columns, result.Rows);
            }

            var table = new QueryTable(columns, rows);
            switch (parsed.GetValue(format))
            {
                case "csv":
                    table.WriteCsv(stdout);
                    break;
                case "json":
                    table.WriteJson(stdout);
                    break;
                default:
                    table.WritePlain(stdout);
                    await stderr.WriteLineAsync($"({rows.Count} row{(rows.Count == 1 ? "" : "s")}{(cost is null ? "" : ", " + cost)})").ConfigureAwait(false);
                    return ExitCodes.Succeeded;
            }

            if (cost is not null)
            {
                // Machine formats keep standard output clean; what the query cost goes beside it.
                await stderr.WriteLineAsync($"({cost})").ConfigureAwait(false);
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }

    /// <summary>How long a query may run at most, when --timeout gives a limit.</summary>
    public const double MaxTimeoutSeconds = 7 * 24 * 3600;

    public const int DefaultMaxRows = 1_000_000;

    private sealed record UserQuery(string Sql, int MaxRows, TextWriter Stderr);

    /// <summary>Reads with SQL from a local store or an S3 one (<c>s3://…</c>), as <c>query</c> does, in its sandbox.</summary>
    internal static Task<QueryResult> SelectAsync(string store, string sql, TextWriter stderr, CancellationToken cancellation)
    {
        var query = new UserQuery(sql, DefaultMaxRows, stderr);
        return store.StartsWith("s3://", StringComparison.Ordinal) ? QueryS3Async(store, query, cancellation) : QueryLocalAsync(store, query, cancellation);
    }

    /// <summary>
    /// The person's SQL over the views of <paramref name="root"/>, in the sandbox (<see cref="QuerySandbox"/>), on a
    /// thread of its own so that Ctrl-C or the timeout interrupts it at once; what the views left out is said.
    /// </summary>
    private static async Task<QueryResult> QueryLocalAsync(string root, UserQuery query, CancellationToken cancellation)
    {
        var result = await Task.Run(() =>
        {
            using var local = ResultsQueryEngine.OpenForQueries(root);
            foreach (var problem in local.Problems)
            {
                query.Stderr.WriteLine($"query: warning: {TerminalText.Safe(problem)}");
            }

            return local.Query(query.Sql, query.MaxRows, cancellation);
        }, CancellationToken.None).WaitAsync(cancellation).ConfigureAwait(false);
        if (result.Truncated)
        {
            await query.Stderr.WriteLineAsync(
                $"query: warning: the answer has more than {query.MaxRows:N0} rows; showing the first {query.MaxRows:N0} (add LIMIT, narrow the query or raise --max-rows)").ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>
    /// DuckDB over an S3 store: what its tables are made of (the Parquet of compacted runs, the raw files of the
    /// others) is copied to a temporary folder, queried there and removed. S3 settings come from
    /// <c>BatchRunner__Results__*</c> as for <c>batchrunner compact</c>; credentials from the SDK's chain.
    /// </summary>
    private static async Task<QueryResult> QueryS3Async(string location, UserQuery query, CancellationToken cancellation)
    {
        var options = ResultsOptions.FromEnvironment(Environment.GetEnvironmentVariable);
        options = new ResultsOptions
        {
            Uri = location, Region = options.Region, EndpointUrl = options.EndpointUrl, ForcePathStyle = options.ForcePathStyle, PartSizeBytes = options.PartSizeBytes,
        };
        var snapshot = Directory.CreateTempSubdirectory("batchrunner-query-");
        try
        {
            using (var store = S3ResultsStore.Create(options, StoreUri.Parse(location)))
            {
                var copied = await StoreSnapshot.DownloadAsync(store, snapshot.FullName, cancellation).ConfigureAwait(false);
                Serilog.Log.Debug("Copied {Files} file(s) of {Store} to {Folder} for DuckDB", copied, location, snapshot.FullName);
            }

            return await QueryLocalAsync(snapshot.FullName, query, cancellation).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                snapshot.Delete(recursive: true);
            }
            catch (IOException e)
            {
                Serilog.Log.Warning("Could not remove the query's copy of the store {Folder}: {Reason}", snapshot.FullName, e.Message);
            }
        }
    }

    /// <summary>Bytes as Athena's console shows them (1024-based).</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KB", "MB", "GB", "TB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0 ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{value:0.##} {units[unit]}");
    }
}
