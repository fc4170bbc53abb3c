using System.CommandLine;
using BatchRunner.Cli.Output;
using BatchRunner.Local.Query;
using DuckDB.NET.Data;

namespace BatchRunner.Cli.Commands;

/// <summary><c>batchrunner query SQL</c>: SQL over the tables <c>results</c> and <c>indexes</c>, with DuckDB.</summary>
internal static class QueryCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var sql = new Argument<string>("sql") { Description = "SQL over the tables results (one row per result row, parameters as columns) and indexes (one row per attempt)" };
        var format = new Option<string>("--format", "-f") { Description = "table, csv or json", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "csv", "json");
        var command = new Command("query", "Query the results of every run in the store with SQL") { sql, format };
        command.SetAction(async (parsed, cancellation) =>
        {
            var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            QueryResult result;
            try
            {
                using var engine = ResultsQueryEngine.Open(store);
                result = engine.Execute(parsed.GetRequiredValue(sql));
            }
            catch (DuckDBException e)
            {
                await stderr.WriteLineAsync($"query: {e.Message}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            var table = new QueryTable(result.Columns, result.Rows);
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
                    await stderr.WriteLineAsync($"({result.Rows.Count} row{(result.Rows.Count == 1 ? "" : "s")})").ConfigureAwait(false);
                    break;
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }
}
