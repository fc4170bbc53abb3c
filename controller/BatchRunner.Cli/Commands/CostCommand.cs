using System.CommandLine;
using System.Globalization;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Costs;
using BatchRunner.Reports;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner cost NAME</c>: what a BatchJob's attempts used (vCPU-hours and GiB-hours) and cost, by run, point or
/// backend, from the ledger rows of the local store or a store the cluster backends wrote, at the price table's rates.
/// </summary>
internal static class CostCommand
{
    private static readonly string[] Groupings = ["run", "point", "backend"];

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("name") { Description = "BatchJob name" };
        var ns = new Option<string>("--namespace", "-n") { Description = "The BatchJob's namespace", DefaultValueFactory = _ => "default" };
        var runOption = new Option<string?>("--run") { Description = "One run only (default: every run of the BatchJob in the store)" };
        var by = new Option<string>("--by") { Description = "Sum by run (default), point (each index) or backend", DefaultValueFactory = _ => "run" };
        by.AcceptOnlyFromAmong(Groupings);
        var prices = new Option<string?>("--prices") { Description = "A JSON file of prices over the defaults: {\"local\": {\"vcpuHour\": 0.02, \"gibHour\": 0.002}, \"aws-batch/spot\": {...}}" };
        var results = new Option<string?>("--results") { Description = "A store the cluster backends wrote: s3://bucket/prefix or a folder (S3 settings from BatchRunner__Results__*)" };
        var command = new Command("cost", "What a BatchJob's attempts used and cost, by run, point or backend") { name, ns, runOption, by, prices, results };
        command.SetAction(async (parsed, cancellation) =>
        {
            if (await LoadPricesAsync(parsed.GetValue(prices), stderr, cancellation).ConfigureAwait(false) is not { } table)
            {
                return ExitCodes.InvalidInput;
            }

            var (jobName, space, runId, grouping) = (parsed.GetRequiredValue(name), parsed.GetRequiredValue(ns), parsed.GetValue(runOption), parsed.GetRequiredValue(by));
            if (!await BatchJobName.CheckAsync("cost", jobName, stderr).ConfigureAwait(false))
            {
                return ExitCodes.InvalidInput;
            }

            var store = parsed.GetValue(results) ?? StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            var answer = await QueryCommand.SelectAsync(store, Sql(table, jobName, space, runId, grouping), stderr, cancellation).ConfigureAwait(false);
            if (answer.Rows.Count == 0)
            {
                await stderr.WriteLineAsync($"cost: no attempt of {jobName}{(runId is null ? "" : $" run {runId}")} in namespace {space} in {store}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            new QueryTable([.. answer.Columns.Select(c => c.ToUpperInvariant())], [.. answer.Rows.Select(r => r.Select(Shown).ToArray())]).WritePlain(stdout);
            var costs = answer.Rows.Select(r => r[^1]).ToList();
            var hours = answer.Rows.Sum(r => Convert.ToDouble(r[^3], CultureInfo.InvariantCulture));
            await stdout.WriteLineAsync(costs.All(c => c is not null)
                ? string.Create(CultureInfo.InvariantCulture, $"total: {hours:0.######} vCPU-hours, ${costs.Sum(c => Convert.ToDouble(c, CultureInfo.InvariantCulture)):0.######}")
                : string.Create(CultureInfo.InvariantCulture, $"total: {hours:0.######} vCPU-hours; no cost where a backend has no price (give one with --prices FILE)")).ConfigureAwait(false);
            await stdout.WriteLineAsync($"prices: {(parsed.GetValue(prices) is { } given ? $"{given} over the defaults" : "the defaults")} ({PriceTable.DefaultsAsOf}); " +
                "Fargate's figures are what it bills for each attempt's own time, a floor: it also bills pulling the image and starting the task").ConfigureAwait(false);
            return ExitCodes.Succeeded;
        });
        return command;
    }

    /// <summary>The defaults, with a price file over them when one is given; null (and why, on standard error) when it does not read.</summary>
    internal static async Task<PriceTable?> LoadPricesAsync(string? file, TextWriter stderr, CancellationToken cancellation)
    {
        if (file is null)
        {
            return PriceTable.Defaults;
        }

        string text;
        try
        {
            text = await File.ReadAllTextAsync(file, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync($"--prices: {e.Message}").ConfigureAwait(false);
            return null;
        }

        var (table, errors) = PriceTable.Read(text, file);
        foreach (var error in errors)
        {
            await stderr.WriteLineAsync($"--prices: {error}").ConfigureAwait(false);
        }

        return table;
    }

    /// <summary>Hours and dollars to six places, never in exponent form; no price shows as a dash.</summary>
    private static object? Shown(object? value) => value switch
    {
        null => "-",
        double number => number.ToString("0.######", CultureInfo.InvariantCulture),
        _ => value,
    };

    /// <summary>One query over the <c>indexes</c> table (<see cref="CostQuery"/>): the attempts' usage and cost summed by the grouping.</summary>
    internal static string Sql(PriceTable table, string name, string ns, string? runId, string grouping)
    {
        var groups = grouping switch
        {
            "point" => "run, \"index\", point_key",
            "backend" => "backend, coalesce(capacity, '') AS capacity",
            _ => "run, backend",
        };
        var order = grouping switch
        {
            "point" => "run, \"index\"",
            "backend" => "backend, capacity",
            _ => "run, backend",
        };
        return $"""
            {CostQuery.Attempts(table, name, ns, runId)}
            SELECT {groups}, {CostQuery.Sums}
            FROM attempts GROUP BY ALL ORDER BY {order}
            """;
    }
}
