using System.Diagnostics;
using System.Globalization;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Core.Sweeps;
using BatchRunner.Local.Query;
using BatchRunner.Store;
using Microsoft.Extensions.Logging.Abstractions;

// Compaction benchmark: N index outputs (ledger row + a JSON-lines file each, as the local backend and the
// wrapper leave them) → compaction time; then the same queries over the raw files and over the Parquet, each
// timed (opening the views included, best of R) and measured in bytes the process read (/proc/self/io rchar,
// page cache hits included), printed with the raw/compacted ratios.
var indexes = Argument("--indexes", 10_000);
var rowsPerIndex = Argument("--rows", 10);
var repeats = Argument("--repeat", 3);
var root = Directory.CreateTempSubdirectory("batchrunner-compaction-bench-").FullName;
try
{
    var job = BatchJobParser.Parse($$"""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: bench}
        spec:
          command: [sim]
          sweep: {grid: {rate: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], servers: [1, 2, 4, 8, 16], policy: [fifo, lifo]}, repeats: {{indexes / 100}}}
        """).GetJobOrThrow();
    var plan = new SweepPlan(job.Spec);
    var runId = RunIdentity.For(job);
    var store = new LocalResultsStore(root);
    var generate = Stopwatch.StartNew();
    var random = new Random(2026);
    var started = DateTimeOffset.UtcNow;
    for (var i = 0; i < plan.Count; i++)
    {
        var output = store.PrepareAttempt("bench", runId, i, 1);
        using (var writer = new StreamWriter(Path.Combine(output, "results.jsonl")))
        {
            for (var r = 0; r < rowsPerIndex; r++)
            {
                writer.Write(string.Create(CultureInfo.InvariantCulture,
                    $"{{\"step\": {r}, \"mean_wait\": {random.NextDouble():R}, \"p_wait\": {random.NextDouble():R}, \"customers\": {random.Next(1000, 100000)}, \"label\": \"run-{i}-{r}\", \"converged\": {(r % 3 == 0 ? "true" : "false")}}}\n"));
            }
        }

        store.WriteLedgerRow(LedgerRow.For(job, runId, plan.For(i), 1, AttemptOutcome.Succeeded, started, started.AddSeconds(1), "local") with { ExitCode = 0 });
    }

    var rawBytes = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"compaction benchmark: {plan.Count:N0} indexes × {rowsPerIndex} rows, {2 * plan.Count:N0} raw files, {rawBytes:N0} bytes (generated in {generate.Elapsed.TotalSeconds:F1}s)"));

    string[] queries =
    [
        "SELECT rate, servers, policy, count(*) AS n, round(avg(mean_wait), 9) AS w FROM results GROUP BY ALL ORDER BY ALL",
        "SELECT round(avg(p_wait), 9) FROM results WHERE servers = 4 AND converged",
        "SELECT status, count(*), sum(output_rows) FROM indexes GROUP BY ALL",
    ];
    var raw = queries.Select(q => Measure(root, q, new ViewScope(RawOnly: true))).ToList();

    // The peer: DuckDB's own COPY of the same files to Parquet (ledger rows and results, each one read_json), with none of
    // compaction's work (parameters as columns, per-run typing, succeeded attempts only, the manifest): its floor.
    var peer = Stopwatch.StartNew();
    var peerFolder = Directory.CreateTempSubdirectory("batchrunner-compaction-peer-").FullName;
    using (var duck = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:"))
    {
        duck.Open();
        using var copy = duck.CreateCommand();
        var run = Path.Combine(root, StoreLayout.RunPrefix("bench", runId));
        copy.CommandText = $"""
            COPY (SELECT * FROM read_json('{run}/index=*/attempt=*/ledger.json')) TO '{peerFolder}/indexes.parquet' (FORMAT parquet, COMPRESSION zstd);
            COPY (SELECT * FROM read_json('{run}/index=*/attempt=*/output/*.jsonl')) TO '{peerFolder}/results.parquet' (FORMAT parquet, COMPRESSION zstd);
            """;
        copy.ExecuteNonQuery();
    }

    peer.Stop();
    Directory.Delete(peerFolder, recursive: true);

    var compaction = Stopwatch.StartNew();
    var report = await new ResultsCompactor(NullLogger<ResultsCompactor>.Instance, TimeProvider.System).CompactAsync(store, "bench", runId, force: true, CancellationToken.None);
    compaction.Stop();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"compaction: {compaction.Elapsed.TotalSeconds:F2}s for {plan.Count:N0} index outputs ({plan.Count / compaction.Elapsed.TotalSeconds:N0} indexes/s) → {report.ResultFiles + 1} Parquet files, {report.ParquetBytes:N0} bytes ({(double)rawBytes / report.ParquetBytes:F1}× smaller than the raw files)"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"peer: DuckDB's COPY (SELECT * FROM read_json(…)) TO … (FORMAT parquet) of the same ledger rows and results: {peer.Elapsed.TotalSeconds:F2}s; compaction / peer {compaction.Elapsed.TotalSeconds / peer.Elapsed.TotalSeconds:F2}× (target ≤ 1.5×)"));

    var compacted = queries.Select(q => Measure(root, q, ViewScope.All)).ToList();
    Console.WriteLine();
    Console.WriteLine($"{"query",-92} {"raw s",8} {"parquet s",10} {"time ×",7} {"raw read",14} {"parquet read",14} {"bytes ×",8}");
    for (var q = 0; q < queries.Length; q++)
    {
        if (!raw[q].Answer.SequenceEqual(compacted[q].Answer))
        {
            Console.Error.WriteLine($"answers differ for {queries[q]}");
            return 1;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{queries[q],-92} {raw[q].Seconds,8:F3} {compacted[q].Seconds,10:F3} {raw[q].Seconds / compacted[q].Seconds,7:F1} {raw[q].Bytes,14:N0} {compacted[q].Bytes,14:N0} {(double)raw[q].Bytes / Math.Max(compacted[q].Bytes, 1),8:F1}"));
    }

    Console.WriteLine("(time: opening the views and answering, best of " + repeats + "; read: bytes the process read doing so; × = raw / parquet; answers identical)");
    return 0;
}
finally
{
    Directory.Delete(root, recursive: true);
}

(double Seconds, long Bytes, List<string> Answer) Measure(string root, string sql, ViewScope scope)
{
    var best = double.MaxValue;
    long bytes = 0;
    List<string> answer = [];
    for (var i = 0; i < repeats; i++)
    {
        var readBefore = ReadChars();
        var watch = Stopwatch.StartNew();
        using (var engine = ResultsQueryEngine.Open(root, scope))
        {
            var result = engine.Execute(sql);
            answer = result.Rows.Select(r => string.Join("|", r.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)))).ToList();
        }

        watch.Stop();
        if (watch.Elapsed.TotalSeconds < best)
        {
            best = watch.Elapsed.TotalSeconds;
            bytes = ReadChars() - readBefore;
        }
    }

    return (best, bytes, answer);
}

static long ReadChars() =>
    File.ReadLines("/proc/self/io").Where(l => l.StartsWith("rchar:", StringComparison.Ordinal)).Select(l => long.Parse(l[6..].Trim(), CultureInfo.InvariantCulture)).First();

int Argument(string name, int fallback)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
}
