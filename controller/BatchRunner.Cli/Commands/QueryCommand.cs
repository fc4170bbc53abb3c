using System.CommandLine;
using System.Globalization;
using BatchRunner.Aws.Athena;
using BatchRunner.Aws.Protocol;
using BatchRunner.Cli.Athena;
using BatchRunner.Cli.Output;
using BatchRunner.Local.Query;
using DuckDB.NET.Data;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner query SQL</c>: SQL over the tables <c>results</c> and <c>indexes</c>, with DuckDB over the local
/// store (the default) or with Athena over the S3 store (<c>--engine athena</c>, after <c>batchrunner athena
/// setup</c>); the same SQL gives the same rows on both.
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
        var athena = new AthenaCliSettings();
        var command = new Command("query", "Query the results of every run in the store with SQL") { sql, format, engine };
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
                    var result = await new AthenaQueryRunner(api, options, log: Serilog.Log.Logger).RunAsync(parsed.GetRequiredValue(sql), cancellation).ConfigureAwait(false);
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
                var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
                try
                {
                    using var local = ResultsQueryEngine.Open(store);
                    var result = local.Execute(parsed.GetRequiredValue(sql));
                    (columns, rows) = (result.Columns, result.Rows);
                }
                catch (DuckDBException e)
                {
                    await stderr.WriteLineAsync($"query: {e.Message}").ConfigureAwait(false);
                    return ExitCodes.InvalidInput;
                }
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
