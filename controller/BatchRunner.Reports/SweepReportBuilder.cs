using System.Globalization;
using BatchRunner.Core.Costs;
using BatchRunner.Core.Store;
using BatchRunner.Local.Query;

namespace BatchRunner.Reports;

/// <summary>Which run to report on, where it is, and what the report should link and price with.</summary>
/// <param name="Store">The store as the person named it (shown in the report).</param>
/// <param name="LogsOf">Where an attempt's logs are (index, attempt → a file:// link or an s3:// location), or null.</param>
/// <param name="PricesNote">Where the prices come from, in words.</param>
public sealed record ReportRequest(
    string BatchJob, string Namespace, string Run, string Store, PriceTable Prices, string PricesNote, Func<long, long, string?> LogsOf, DateTimeOffset Now);

/// <summary>
/// Aggregates one run of a BatchJob into a <see cref="SweepReport"/> with DuckDB, over the store's views: every figure is
/// a GROUP BY whose answer is bounded by <see cref="ReportLimits"/>, so a report over a million result rows reads them
/// once (into one row per index) and the rest works on that. Every name a workload or spec chose reaches SQL only as a
/// quoted identifier or a string literal; in the tables it built, columns have names of its own (p0…, o0…).
/// </summary>
public static class SweepReportBuilder
{
    private static readonly HashSet<string> NumericTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT", "UHUGEINT", "DOUBLE", "FLOAT",
    };

    private static readonly HashSet<string> ResultKeys = new(StringComparer.OrdinalIgnoreCase) { "batchjob", "namespace", "run", "index", "repeat", "seed" };

    /// <summary>The statuses the ledger gives an attempt that did not succeed by the workload's fault (the rest: interrupted).</summary>
    private const string FailedStatuses = "('failed', 'timed_out', 'failed_to_start')";

    private sealed record Column(string Name, string Alias, bool Numeric, long Values);

    /// <summary>The report, or null when the store holds no attempt of that run.</summary>
    public static SweepReport? Build(ResultsQueryEngine engine, ReportRequest request)
    {
        var scope = $"batchjob = {Lit(request.BatchJob)} AND namespace = {Lit(request.Namespace)} AND run = {Lit(request.Run)}";
        if (Long(engine.Execute($"SELECT count(*) FROM indexes WHERE {scope}").Rows[0][0]) == 0)
        {
            return null;
        }

        var notes = new List<string>();

        // 1. The parameters (columns of indexes that are not the ledger's) and the numeric outputs (of results that are
        //    neither keys nor parameters).
        var parameterColumns = Describe(engine, "indexes").Where(c => !LedgerColumns.Names.Contains(c.Name)).ToList();
        var parameterNames = new HashSet<string>(parameterColumns.Select(c => c.Name), StringComparer.OrdinalIgnoreCase);
        var numericOutputs = Describe(engine, "results")
            .Where(c => !ResultKeys.Contains(c.Name) && !parameterNames.Contains(c.Name) && NumericTypes.Contains(c.Type))
            .Select(c => c.Name).ToList();
        if (numericOutputs.Count > ReportLimits.Outputs)
        {
            notes.Add($"{numericOutputs.Count} numeric outputs: the first {ReportLimits.Outputs} are plotted ({string.Join(", ", numericOutputs.Skip(ReportLimits.Outputs))} are not)");
            numericOutputs = numericOutputs.Take(ReportLimits.Outputs).ToList();
        }

        // 2. One row per index: its parameters, how its attempts ended, and the mean of each output over its rows.
        var parameterList = string.Concat(parameterColumns.Select((c, i) => $", any_value({Id(c.Name)}) AS p{i}"));
        engine.Run($"""
            CREATE OR REPLACE TEMP TABLE report_index AS
            SELECT "index" AS idx{parameterList}, count(*) AS attempts, bool_or(status = 'succeeded') AS ok,
                arg_max(status, attempt) AS last_status, arg_max(exit_code, attempt) AS exit_code, arg_max(reason, attempt) AS reason, max(attempt) AS last_attempt
            FROM indexes WHERE {scope} GROUP BY "index"
            """);
        var outputMeans = string.Concat(numericOutputs.Select((o, i) => $", avg(CASE WHEN isfinite({Id(o)}::DOUBLE) THEN {Id(o)}::DOUBLE END) AS o{i}"));
        engine.Run($"""
            CREATE OR REPLACE TEMP TABLE report_output AS
            SELECT f.*{string.Concat(numericOutputs.Select((_, i) => $", r.o{i}"))}
            FROM report_index f LEFT JOIN (SELECT "index" AS idx{outputMeans} FROM results WHERE {scope} GROUP BY "index") r USING (idx)
            """);

        // 3. The swept parameters: those with more than one value in the run.
        var distinct = parameterColumns.Count == 0 ? [] : engine.Execute(
            $"SELECT {string.Join(", ", parameterColumns.Select((_, i) => $"count(DISTINCT p{i})"))} FROM report_index").Rows[0];
        var parameters = parameterColumns
            .Select((c, i) => new Column(c.Name, $"p{i}", NumericTypes.Contains(c.Type), Long(distinct[i])))
            .Where(c => c.Values > 1).ToList();
        if (parameters.Count > ReportLimits.Parameters)
        {
            notes.Add($"{parameters.Count} parameters vary: the first {ReportLimits.Parameters} are plotted");
            parameters = parameters.Take(ReportLimits.Parameters).ToList();
        }

        var outputs = numericOutputs.Select((o, i) => new Column(o, $"o{i}", true, 0)).ToList();
        var summary = Summary(engine, scope);
        var failures = FailureRates(engine, parameters);
        return new SweepReport
        {
            BatchJob = request.BatchJob,
            Namespace = request.Namespace,
            Run = request.Run,
            Store = request.Store,
            GeneratedAt = request.Now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            Summary = summary,
            Parameters = parameters.Select(p => new ReportParameter(p.Name, p.Numeric, p.Values)).ToList(),
            Outputs = outputs.Select(o => o.Name).ToList(),
            Effects = [.. outputs.SelectMany(o => parameters.Select(p => Effect(engine, o, p)))],
            Heatmaps = Heatmaps(engine, outputs, parameters, notes),
            FailureRates = failures,
            Durations = Durations(engine, scope),
            Timeline = Timeline(engine, scope),
            Cost = Cost(engine, request, parameters, notes),
            Failed = Failed(engine, request, parameterColumns.Select(c => c.Name).ToList()),
            Notes = notes,
        };
    }

    private static ReportSummary Summary(ResultsQueryEngine engine, string scope)
    {
        var indexes = engine.Execute("SELECT count(*), count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok), sum(attempts) FROM report_index").Rows[0];
        var attempts = engine.Execute($"""
            SELECT count(*) FILTER (WHERE reused_from IS NOT NULL),
                min(epoch(started_at)) FILTER (WHERE reused_from IS NULL), max(epoch(finished_at)) FILTER (WHERE reused_from IS NULL),
                coalesce(sum(duration_seconds) FILTER (WHERE reused_from IS NULL AND isfinite(duration_seconds)), 0),
                coalesce(sum(output_malformed), 0), count(*) FILTER (WHERE status = 'succeeded' AND output_rows = 0)
            FROM indexes WHERE {scope}
            """).Rows[0];
        var rows = Long(engine.Execute($"SELECT count(*) FROM results WHERE {scope}").Rows[0][0]);
        return new ReportSummary(
            Long(indexes[0]), Long(indexes[1]), Long(indexes[2]), Long(indexes[3]), Long(indexes[3]) - Long(indexes[0]), Long(attempts[0]),
            NullableDouble(attempts[1]), NullableDouble(attempts[2]), Double(attempts[3]), Long(attempts[4]), Long(attempts[5]), rows);
    }

    /// <summary>
    /// The SQL of a parameter's value as the x of a figure: the value itself, or for a numeric parameter with more values
    /// than a figure shows, the middle of its equal-width bin.
    /// </summary>
    private static (string Expression, bool Binned) AxisOf(ResultsQueryEngine engine, Column parameter, int most)
    {
        if (!parameter.Numeric || parameter.Values <= most)
        {
            return (parameter.Alias, false);
        }

        var range = engine.Execute($"SELECT min({parameter.Alias})::DOUBLE, max({parameter.Alias})::DOUBLE FROM report_index").Rows[0];
        var (low, high) = (Double(range[0]), Double(range[1]));
        var width = (high - low) / most;
        return (string.Create(CultureInfo.InvariantCulture,
            $"({low:R} + (least(floor(({parameter.Alias}::DOUBLE - {low:R}) / {width:R}), {most - 1}) + 0.5) * {width:R})"), true);
    }

    private static OutputEffect Effect(ResultsQueryEngine engine, Column output, Column parameter)
    {
        var (x, binned) = AxisOf(engine, parameter, ReportLimits.ParameterValues);
        var rows = engine.Execute($"""
            SELECT x::VARCHAR, count(v), avg(v), stddev_samp(v)
            FROM (SELECT {x} AS x, {output.Alias} AS v FROM report_output WHERE {output.Alias} IS NOT NULL AND {parameter.Alias} IS NOT NULL)
            GROUP BY x ORDER BY x LIMIT {ReportLimits.ParameterValues}
            """).Rows;
        return new OutputEffect(output.Name, parameter.Name, binned, rows.Select(r =>
        {
            var (n, mean, deviation) = (Long(r[1]), Double(r[2]), NullableDouble(r[3]));
            var half = deviation is { } d && n > 1 ? 1.96 * d / Math.Sqrt(n) : (double?)null;
            return new EffectPoint((string)r[0]!, n, mean, mean - half, mean + half);
        }).ToList());
    }

    /// <summary>The first outputs over pairs of swept parameters, each axis at most <see cref="ReportLimits.HeatmapValues"/> values.</summary>
    private static List<OutputHeatmap> Heatmaps(ResultsQueryEngine engine, List<Column> outputs, List<Column> parameters, List<string> notes)
    {
        var pairs = parameters.SelectMany((x, i) => parameters.Skip(i + 1).Select(y => (X: x, Y: y)))
            .Where(p => (p.X.Numeric || p.X.Values <= ReportLimits.HeatmapValues) && (p.Y.Numeric || p.Y.Values <= ReportLimits.HeatmapValues)).ToList();
        var wanted = outputs.SelectMany(o => pairs.Select(p => (Output: o, p.X, p.Y))).ToList();
        if (wanted.Count > ReportLimits.Heatmaps)
        {
            notes.Add($"{wanted.Count} heatmaps (outputs × pairs of parameters): the first {ReportLimits.Heatmaps} are drawn");
        }

        return wanted.Take(ReportLimits.Heatmaps).Select(h =>
        {
            var (x, _) = AxisOf(engine, h.X, ReportLimits.HeatmapValues);
            var (y, _) = AxisOf(engine, h.Y, ReportLimits.HeatmapValues);
            var rows = engine.Execute($"""
                SELECT x::VARCHAR, y::VARCHAR, dense_rank() OVER (ORDER BY x) - 1, dense_rank() OVER (ORDER BY y) - 1, m, n
                FROM (SELECT x, y, avg(v) AS m, count(v) AS n
                      FROM (SELECT {x} AS x, {y} AS y, {h.Output.Alias} AS v FROM report_output
                            WHERE {h.Output.Alias} IS NOT NULL AND {h.X.Alias} IS NOT NULL AND {h.Y.Alias} IS NOT NULL)
                      GROUP BY x, y)
                """).Rows;
            var xs = rows.Select(r => ((int)Long(r[2]), (string)r[0]!)).Distinct().OrderBy(p => p.Item1).Select(p => p.Item2).ToList();
            var ys = rows.Select(r => ((int)Long(r[3]), (string)r[1]!)).Distinct().OrderBy(p => p.Item1).Select(p => p.Item2).ToList();
            return new OutputHeatmap(h.Output.Name, h.X.Name, h.Y.Name, xs, ys, rows.Select(r => new HeatCell((int)Long(r[2]), (int)Long(r[3]), Double(r[4]), Long(r[5]))).ToList());
        }).ToList();
    }

    private static List<FailureRate> FailureRates(ResultsQueryEngine engine, List<Column> parameters) =>
        parameters.Select(p =>
        {
            var (x, binned) = AxisOf(engine, p, ReportLimits.ParameterValues);
            var rows = engine.Execute($"""
                SELECT x::VARCHAR, count(*), count(*) FILTER (WHERE NOT ok)
                FROM (SELECT {x} AS x, ok FROM report_index WHERE {p.Alias} IS NOT NULL)
                GROUP BY x ORDER BY x LIMIT {ReportLimits.ParameterValues}
                """).Rows;
            return new FailureRate(p.Name, binned, rows.Select(r => new FailurePoint((string)r[0]!, Long(r[1]), Long(r[2]))).ToList());
        }).ToList();

    /// <summary>Every attempt that ran here (not reused), in equal bins of its duration.</summary>
    private static DurationHistogram Durations(ResultsQueryEngine engine, string scope)
    {
        var ran = $"{scope} AND reused_from IS NULL AND isfinite(duration_seconds)";
        var range = engine.Execute($"SELECT min(duration_seconds), max(duration_seconds) FROM indexes WHERE {ran}").Rows[0];
        if (range[0] is null)
        {
            return new DurationHistogram(0, 0, []);
        }

        var (low, high) = (Double(range[0]), Double(range[1]));
        var width = high > low ? (high - low) / ReportLimits.DurationBins : 1;
        var rows = engine.Execute(string.Create(CultureInfo.InvariantCulture, $"""
            SELECT least(floor((duration_seconds - {low:R}) / {width:R}), {ReportLimits.DurationBins - 1})::INTEGER AS bin,
                count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status IN {FailedStatuses}),
                count(*) FILTER (WHERE status <> 'succeeded' AND status NOT IN {FailedStatuses})
            FROM indexes WHERE {ran} GROUP BY bin ORDER BY bin
            """)).Rows;
        return new DurationHistogram(low, width, rows.Select(r => new DurationBin((int)Long(r[0]), Long(r[1]), Long(r[2]), Long(r[3]))).ToList());
    }

    /// <summary>
    /// How many attempts ran at once, by backend, from the attempts' start and end times: a running sum over +1 at each
    /// start and −1 at each end (ends first at equal times), its highest value in each bucket.
    /// </summary>
    private static RunTimeline Timeline(ResultsQueryEngine engine, string scope)
    {
        var ran = $"{scope} AND reused_from IS NULL AND started_at IS NOT NULL";
        var span = engine.Execute($"SELECT min(epoch(started_at)), max(epoch(coalesce(finished_at, started_at))) FROM indexes WHERE {ran}").Rows[0];
        if (span[0] is null)
        {
            return new RunTimeline(0, 0, 0, [], []);
        }

        var (start, end) = (Double(span[0]), Double(span[1]));
        var width = Math.Max((end - start) / ReportLimits.TimelineBuckets, 0.001);
        var buckets = (int)Math.Min(ReportLimits.TimelineBuckets, Math.Ceiling((end - start) / width) + 1);
        var bucket = string.Create(CultureInfo.InvariantCulture, $"least(floor((t - {start:R}) / {width:R}), {buckets - 1})::INTEGER");
        var running = engine.Execute($"""
            WITH events AS (
                SELECT coalesce(backend, '') AS backend, epoch(started_at) AS t, 1 AS d FROM indexes WHERE {ran}
                UNION ALL
                SELECT coalesce(backend, ''), epoch(coalesce(finished_at, started_at)), -1 FROM indexes WHERE {ran}),
            counted AS (
                SELECT backend, t, sum(d) OVER running AS c, row_number() OVER running AS seq
                FROM events WINDOW running AS (PARTITION BY backend ORDER BY t, d ROWS UNBOUNDED PRECEDING))
            SELECT backend, {bucket} AS b, max(c), arg_max(c, seq) FROM counted GROUP BY backend, b ORDER BY backend, b
            """).Rows;
        var retries = engine.Execute($"SELECT {bucket} AS b, count(*) FROM (SELECT epoch(started_at) AS t FROM indexes WHERE {ran} AND attempt > 1) GROUP BY b ORDER BY b").Rows;
        return new RunTimeline(start, width, buckets,
            running.GroupBy(r => (string)r[0]!).Select(g => new BackendRunning(g.Key, g.Select(r => new RunningPoint((int)Long(r[1]), Long(r[2]), Long(r[3]))).ToList())).ToList(),
            retries.Select(r => new BucketCount((int)Long(r[0]), Long(r[1]))).ToList());
    }

    /// <summary>The total, by backend, and by point (the swept parameters' values; repeats summed), most costly first.</summary>
    private static CostSummary Cost(ResultsQueryEngine engine, ReportRequest request, List<Column> parameters, List<string> notes)
    {
        var attempts = CostQuery.Attempts(request.Prices, request.BatchJob, request.Namespace, request.Run);
        var total = engine.Execute($"{attempts} SELECT {CostQuery.Sums} FROM attempts").Rows[0];
        var byBackend = engine.Execute($"{attempts} SELECT backend || coalesce('/' || capacity, ''), {CostQuery.Sums} FROM attempts GROUP BY 1 ORDER BY 1").Rows;
        var label = parameters.Count == 0 ? "'all'" : $"concat_ws(', ', {string.Join(", ", parameters.Select(p => $"{Lit(p.Name + "=")} || coalesce({Id(p.Name)}::VARCHAR, 'null')"))})";
        var byPoint = engine.Execute($"""
            {attempts} SELECT {label} AS point, {CostQuery.Sums}, count(*) OVER () AS points
            FROM attempts GROUP BY point ORDER BY cost_usd DESC NULLS LAST, vcpu_hours DESC, point LIMIT {ReportLimits.CostPoints}
            """).Rows;
        if (total[3] is null)
        {
            notes.Add($"no cost in total: some attempts ran on a backend without a price ({string.Join(", ", byBackend.Where(r => r[4] is null).Select(r => r[0]))}); give one with --prices FILE");
        }

        CostGroup Group(object?[] r) => new((string)r[0]!, Long(r[1]), Double(r[2]), NullableDouble(r[4]));
        return new CostSummary(NullableDouble(total[3]), Double(total[1]), Double(total[2]), request.PricesNote,
            byBackend.Select(Group).ToList(), byPoint.Select(Group).ToList(), byPoint.Count == 0 ? 0 : Long(byPoint[0][5]));
    }

    private static FailedIndexes Failed(ResultsQueryEngine engine, ReportRequest request, List<string> parameterNames)
    {
        var label = parameterNames.Count == 0 ? "''" : $"concat_ws(', ', {string.Join(", ", parameterNames.Select((p, i) => $"{Lit(p + "=")} || coalesce(p{i}::VARCHAR, 'null')"))})";
        var total = Long(engine.Execute("SELECT count(*) FROM report_index WHERE NOT ok").Rows[0][0]);
        var rows = engine.Execute($"""
            SELECT idx, {label}, attempts, last_status, exit_code, reason, last_attempt
            FROM report_index WHERE NOT ok ORDER BY idx LIMIT {ReportLimits.FailedRows}
            """).Rows;
        var ns = request.Namespace == "default" ? "" : $" -n {request.Namespace}";
        return new FailedIndexes(total, rows.Select(r =>
        {
            var (index, attempt) = (Long(r[0]), Long(r[6]));
            return new FailedIndex(index, (string)r[1]!, Long(r[2]), (string)r[3]!, r[4] is null ? null : Long(r[4]), r[5] as string,
                request.LogsOf(index, attempt),
                string.Create(CultureInfo.InvariantCulture, $"batchrunner logs {request.BatchJob}{ns} --run {request.Run} --index {index} --attempt {attempt}"));
        }).ToList());
    }

    private static List<(string Name, string Type)> Describe(ResultsQueryEngine engine, string view) =>
        engine.Execute($"SELECT column_name, column_type FROM (DESCRIBE {view})").Rows.Select(r => ((string)r[0]!, (string)r[1]!)).ToList();

    private static string Lit(string text) => ResultsQueryEngine.Literal(text);

    private static string Id(string name) => ResultsQueryEngine.Ident(name);

    /// <summary>DuckDB sums integers as HUGEINT, which DuckDB.NET gives as a BigInteger.</summary>
    private static long Long(object? value) => value switch
    {
        null => 0,
        System.Numerics.BigInteger big => (long)big,
        _ => Convert.ToInt64(value, CultureInfo.InvariantCulture),
    };

    private static double Double(object? value) => NullableDouble(value) ?? 0;

    private static double? NullableDouble(object? value) => value switch
    {
        null => null,
        System.Numerics.BigInteger big => (double)big,
        _ => Convert.ToDouble(value, CultureInfo.InvariantCulture),
    };
}
