using System.CommandLine;
using System.Globalization;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Costs;
using BatchRunner.Local.Query;

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

    /// <summary>
    /// One query over the <c>indexes</c> table: each attempt's billed usage (else its requested usage) at its backend's
    /// price (its capacity's where it has one), summed by the grouping; a group with any attempt without a price has no cost.
    /// </summary>
    internal static string Sql(PriceTable table, string name, string ns, string? runId, string grouping)
    {
        var prices = string.Join(", ", table.Prices.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p =>
        {
            var (backend, capacity) = p.Key.IndexOf('/', StringComparison.Ordinal) is var at and >= 0 ? (p.Key[..at], p.Key[(at + 1)..]) : (p.Key, null);
            return string.Create(CultureInfo.InvariantCulture,
                $"({ResultsQueryEngine.Literal(backend)}, {(capacity is null ? "NULL" : ResultsQueryEngine.Literal(capacity))}, {p.Value.VcpuHour:R}::DOUBLE, {p.Value.GibHour:R}::DOUBLE)");
        }));
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
            WITH prices(backend, capacity, vcpu_hour, gib_hour) AS (VALUES {(prices.Length == 0 ? "(NULL, NULL, NULL::DOUBLE, NULL::DOUBLE)" : prices)}),
            attempts AS (
                SELECT i.run, i."index", i.point_key, i.backend, i.capacity,
                    coalesce(i.billed_vcpu_seconds, i.vcpu_seconds, 0) AS vcpu_seconds, coalesce(i.billed_gib_seconds, i.gib_seconds, 0) AS gib_seconds,
                    coalesce(own.vcpu_hour, base.vcpu_hour) AS vcpu_hour, coalesce(own.gib_hour, base.gib_hour) AS gib_hour
                FROM indexes i
                LEFT JOIN prices own ON own.backend = i.backend AND own.capacity = i.capacity AND i.capacity <> 'on-demand'
                LEFT JOIN prices base ON base.backend = i.backend AND base.capacity IS NULL
                WHERE i.batchjob = {ResultsQueryEngine.Literal(name)} AND i.namespace = {ResultsQueryEngine.Literal(ns)}{(runId is null ? "" : $" AND i.run = {ResultsQueryEngine.Literal(runId)}")})
            SELECT {groups}, count(*) AS attempts,
                sum(vcpu_seconds) / 3600 AS vcpu_hours, sum(gib_seconds) / 3600 AS gib_hours,
                CASE WHEN bool_or(vcpu_hour IS NULL) THEN NULL ELSE sum(vcpu_seconds * vcpu_hour + gib_seconds * gib_hour) / 3600 END AS cost_usd
            FROM attempts GROUP BY ALL ORDER BY {order}
            """;
    }
}
