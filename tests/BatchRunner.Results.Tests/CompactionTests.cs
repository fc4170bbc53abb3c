using System.Text.Json.Nodes;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Local.Query;
using BatchRunner.Store;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Results.Tests;

/// <summary>Compaction to Parquet: the same SQL answers identically over raw files and over Parquet; nothing is lost or counted twice.</summary>
public sealed class CompactionTests : IDisposable
{
    /// <summary>
    /// Two rows per index with integers, reals, text, booleans, a nested object and a list; index 3 fails once
    /// (its partial output must stay out), index 5 writes a malformed line, index 6 writes nothing, and "mixed"
    /// is a number in even indexes and text in odd ones.
    /// </summary>
    internal const string Script = """
        i=$BATCHRUNNER_INDEX; o="$BATCHRUNNER_OUTPUT_DIR/rows.jsonl"
        if [ "$i" = 3 ] && [ ! -f "$SCRATCH/failed-once" ]; then touch "$SCRATCH/failed-once"; echo '{"v": -1, "partial": true}' > "$o"; exit 1; fi
        if [ "$i" = 6 ]; then exit 0; fi
        if [ $((i % 2)) = 0 ]; then mixed=$i; else mixed="\"t$i\""; fi
        for r in 1 2; do
          echo "{\"v\": $((i * 10 + r)), \"w\": $i.5, \"label\": \"i$i-$r\", \"flag\": true, \"mixed\": $mixed, \"nested\": {\"k\": $r}, \"list\": [$i, $r]}" >> "$o"
        done
        if [ "$i" = 5 ]; then echo 'this is not json' >> "$o"; fi
        exit 0
        """;

    internal static readonly string[] Queries =
    [
        "SELECT * FROM results ORDER BY \"index\", v",
        "SELECT * FROM indexes ORDER BY \"index\", attempt",
        "SELECT a, b, count(*) AS n, sum(v) AS total, avg(w) AS mean_w, max(label) AS last FROM results GROUP BY ALL ORDER BY ALL",
        "SELECT status, count(*) AS n, sum(output_rows) AS rows, sum(output_malformed) AS malformed FROM indexes GROUP BY ALL ORDER BY ALL",
        "SELECT mixed, nested.k AS k, list[2] AS second FROM results WHERE flag ORDER BY ALL",
        "SELECT r.\"index\", count(*) FROM results r JOIN indexes i USING (batchjob, run, \"index\") WHERE i.status = 'succeeded' GROUP BY ALL ORDER BY ALL",
        "SELECT column_name, column_type FROM (DESCRIBE results) ORDER BY column_name",
        "SELECT column_name, column_type FROM (DESCRIBE indexes) ORDER BY column_name",
    ];

    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private BatchRunner.Core.Spec.BatchJob Job(string name = "job") =>
        Wrapper.Job(Script, $"env: [{{name: SCRATCH, value: {System.Text.Json.JsonSerializer.Serialize(_temp.Path)}}}]\nsweep: {{grid: {{a: [1, 2], b: [x, y]}}, repeats: 2}}\nretry: {{attempts: 2, backoffSeconds: 0}}", name);

    [Fact]
    public async Task The_same_queries_answer_identically_over_raw_files_and_over_parquet()
    {
        var store = _temp.Sub("store");
        var job = Job();
        await LocalRuns.RunAsync(store, job);
        var raw = Answers(store);

        var report = await LocalRuns.Compactor().CompactAsync(new LocalResultsStore(store), "job", RunIdentity.For(job), force: false, CancellationToken.None);

        using (var engine = ResultsQueryEngine.Open(store))
        {
            Assert.Equal([RunIdentity.For(job)], engine.CompactedRuns);
        }

        Assert.Equal(raw, Answers(store));
        // 8 indexes, index 3 twice; 6 indexes wrote 2 rows each (index 6 none, index 3's failed attempt is left out).
        Assert.Equal((9L, 14L), (report.Indexes, report.Results));
        Assert.Equal(14L, (long)Open(store).Execute("SELECT count(*) FROM results").Rows[0][0]!);
    }

    [Fact]
    public async Task A_compacted_run_beside_a_raw_one_is_counted_once_and_its_raw_files_are_not_read()
    {
        var store = _temp.Sub("store");
        var first = Job("first");
        var second = Job("second");
        await LocalRuns.RunAsync(store, first);
        File.Delete(Path.Combine(_temp.Path, "failed-once"));
        await LocalRuns.RunAsync(store, second);
        var raw = Answers(store);

        await LocalRuns.Compactor().CompactAsync(new LocalResultsStore(store), "first", RunIdentity.For(first), force: false, CancellationToken.None);
        // Were the raw files still read, this extra raw row of the compacted run would show up.
        File.AppendAllText(Path.Combine(store, StoreLayout.OutputPrefix("first", RunIdentity.For(first), 0, 1), "rows.jsonl"), "{\"v\": 999}\n");

        using var engine = ResultsQueryEngine.Open(store);
        Assert.Equal([RunIdentity.For(first)], engine.CompactedRuns);
        Assert.Equal([("first", 14L), ("second", 14L)], engine.Execute("SELECT batchjob, count(*) FROM results GROUP BY ALL ORDER BY ALL").Rows.Select(r => ((string)r[0]!, (long)r[1]!)));
        Assert.Equal(raw.Skip(2).Take(2), Answers(store).Skip(2).Take(2));
    }

    [Fact]
    public async Task An_output_named_like_another_batchjobs_parameter_is_renamed_whether_runs_are_raw_or_compacted()
    {
        var store = _temp.Sub("store");
        // "first" writes an output "label"; "other" has a parameter "label" (and writes the output too).
        var first = Job("first");
        var other = Wrapper.Job(Script, $"env: [{{name: SCRATCH, value: {System.Text.Json.JsonSerializer.Serialize(_temp.Path)}}}]\nsweep: {{grid: {{label: [p, q]}}}}", "other");
        await LocalRuns.RunAsync(store, first);
        await LocalRuns.RunAsync(store, other);
        string[] queries =
        [
            "SELECT batchjob, \"index\", label, output_label, v FROM results ORDER BY ALL",
            "SELECT column_name FROM (DESCRIBE results) ORDER BY column_name",
        ];
        List<List<string>> Answer()
        {
            using var engine = ResultsQueryEngine.Open(store);
            return queries.Select(q => LocalRuns.Answer(engine, q)).ToList();
        }

        var raw = Answer();
        Assert.Contains("first | 0 | NULL | i0-1 | 1", raw[0]);
        Assert.Contains("other | 0 | p | i0-1 | 1", raw[0]);
        Assert.DoesNotContain("label", raw[1].Where(c => c.StartsWith("label", StringComparison.Ordinal) && c != "label"));

        // One run compacted, the other raw; then both compacted: each compacted alone, yet the same answer.
        await LocalRuns.Compactor().CompactAsync(new LocalResultsStore(store), "first", RunIdentity.For(first), force: false, CancellationToken.None);
        Assert.Equal(raw, Answer());
        await LocalRuns.Compactor().CompactAsync(new LocalResultsStore(store), "other", RunIdentity.For(other), force: false, CancellationToken.None);
        using (var engine = ResultsQueryEngine.Open(store))
        {
            Assert.Equal(2, engine.CompactedRuns.Count);
        }

        Assert.Equal(raw, Answer());
    }

    [Fact]
    public async Task Until_the_manifest_says_compacted_the_raw_files_are_read_and_a_rerun_finishes_the_job()
    {
        var store = _temp.Sub("store");
        var job = Job();
        var runId = RunIdentity.For(job);
        await LocalRuns.RunAsync(store, job);
        var raw = Answers(store);
        var local = new LocalResultsStore(store);
        await LocalRuns.Compactor().CompactAsync(local, "job", runId, force: false, CancellationToken.None);
        var manifestKey = StoreLayout.RunManifestKey("job", runId);
        var compacted = (await local.GetBytesAsync(manifestKey, CancellationToken.None))!;

        // A crash after the files moved but before the manifest: Parquet present, the manifest does not list it.
        await local.PutBytesAsync(manifestKey, CompactionState.Without(compacted), CancellationToken.None);
        // … and a crash while staging left this behind.
        await local.PutBytesAsync($"{StoreLayout.StagingPrefix("job", runId)}/dead/results/part-00000.parquet", "junk"u8.ToArray(), CancellationToken.None);
        using (var engine = ResultsQueryEngine.Open(store))
        {
            Assert.Empty(engine.CompactedRuns);
        }

        Assert.Equal(raw, Answers(store));

        // A manifest that lists a file that is not there is not trusted either.
        await local.PutBytesAsync(manifestKey, compacted, CancellationToken.None);
        File.Move(Path.Combine(store, StoreLayout.CompactedKey("job", runId, "results", 0)), Path.Combine(_temp.Path, "moved-away.parquet"));
        Assert.Equal(raw, Answers(store));

        await LocalRuns.Compactor().CompactAsync(local, "job", runId, force: false, CancellationToken.None);

        using (var engine = ResultsQueryEngine.Open(store))
        {
            Assert.Equal([runId], engine.CompactedRuns);
        }

        Assert.Equal(raw, Answers(store));
        Assert.False(Directory.Exists(Path.Combine(store, StoreLayout.StagingPrefix("job", runId))));
    }

    [Fact]
    public async Task The_manifest_records_rows_bytes_schema_raw_counts_and_columns_whose_type_changes()
    {
        var store = _temp.Sub("store");
        var job = Job();
        var runId = RunIdentity.For(job);
        await LocalRuns.RunAsync(store, job);

        await LocalRuns.Compactor().CompactAsync(new LocalResultsStore(store), "job", runId, force: false, CancellationToken.None);

        var manifest = JsonNode.Parse(File.ReadAllBytes(Path.Combine(store, StoreLayout.RunManifestKey("job", runId))))!;
        var compaction = manifest["compaction"]!;
        Assert.Equal("Succeeded", (string?)manifest["phase"]);
        Assert.Equal((14L, 9L), ((long)compaction["results"]!["rows"]!, (long)compaction["indexes"]!["rows"]!));
        Assert.Equal(new FileInfo(Path.Combine(store, StoreLayout.CompactedKey("job", runId, "results", 0))).Length, (long)compaction["results"]!["bytes"]!);
        var schema = compaction["results"]!["schema"]!.AsArray().ToDictionary(c => (string)c!["name"]!, c => (string)c!["type"]!);
        Assert.Equal(("BIGINT", "DOUBLE", "VARCHAR", "BOOLEAN", "BIGINT"), (schema["v"], schema["w"], schema["mixed"], schema["flag"], schema["a"]));
        Assert.Equal((1L, 8L), ((long)compaction["raw"]!["malformed_lines"]!, (long)compaction["raw"]!["succeeded"]!));
        var mixed = compaction["mixed_type_columns"]!.AsArray().Single()!;
        Assert.Equal("mixed", (string?)mixed["column"]);
        Assert.Equal([0L, 2L, 4L], mixed["types"]!["NUMBER"]!.AsArray().Select(n => (long)n!));
        Assert.Equal([1L, 3L, 5L, 7L], mixed["types"]!["VARCHAR"]!.AsArray().Select(n => (long)n!));
    }

    [Fact]
    public async Task A_run_whose_manifest_says_running_is_not_compacted_unless_forced()
    {
        var store = _temp.Sub("store");
        var job = Job();
        var runId = RunIdentity.For(job);
        await LocalRuns.RunAsync(store, job);
        var local = new LocalResultsStore(store);
        var manifest = JsonNode.Parse((await local.GetBytesAsync(StoreLayout.RunManifestKey("job", runId), CancellationToken.None))!)!;
        manifest["phase"] = "Running";
        await local.PutBytesAsync(StoreLayout.RunManifestKey("job", runId), System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString()), CancellationToken.None);

        var refused = await Assert.ThrowsAsync<CompactionRefusedException>(() => LocalRuns.Compactor().CompactAsync(local, "job", runId, force: false, CancellationToken.None));
        Assert.Contains("is running", refused.Message, StringComparison.Ordinal);

        await LocalRuns.Compactor().CompactAsync(local, "job", runId, force: true, CancellationToken.None);
        using var engine = ResultsQueryEngine.Open(store);
        Assert.Equal([runId], engine.CompactedRuns);
    }

    [Fact]
    public async Task An_s3_run_uploaded_by_the_wrapper_is_compacted_in_s3_and_answers_as_its_raw_files_do()
    {
        var (s3, uri) = await S3Server.Shared.NewStoreAsync();
        var job = Job();
        var runId = RunIdentity.For(job);
        var spec = Path.Combine(_temp.Path, "spec.json");
        await File.WriteAllTextAsync(spec, RunIdentity.SpecJson(job));
        for (var index = 0; index < 8; index++)
        {
            var environment = S3Server.Shared.Environment();
            environment["JOB_COMPLETION_INDEX"] = $"{index}";
            environment["SCRATCH"] = _temp.Path;
            var exit = (await Wrapper.RunAsync(Wrapper.Arguments(spec, uri, job), environment)).ExitCode;
            if (exit != 0)
            {
                exit = (await Wrapper.RunAsync(Wrapper.Arguments(spec, uri, job), environment)).ExitCode;
            }

            Assert.Equal(0, exit);
        }

        var report = await LocalRuns.Compactor().CompactAsync(s3, "job", runId, force: false, CancellationToken.None);

        Assert.Equal((9L, 14L), (report.Indexes, report.Results));
        var everything = _temp.Sub("everything");
        await foreach (var item in s3.ListAsync("", CancellationToken.None))
        {
            await s3.DownloadAsync(item.Key, Path.Combine(everything, item.Key), CancellationToken.None);
        }

        Assert.True(File.Exists(Path.Combine(everything, StoreLayout.CompactedKey("job", runId, "results", 0))));
        Assert.False(Directory.Exists(Path.Combine(everything, StoreLayout.StagingPrefix("job", runId))));
        using var raw = ResultsQueryEngine.Open(everything, new ViewScope(RawOnly: true));

        // What a query of the S3 store needs: the compacted run's Parquet and manifest, none of its raw files.
        var snapshot = _temp.Sub("snapshot");
        Assert.Equal(3, await StoreSnapshot.DownloadAsync(s3, snapshot, CancellationToken.None));
        using var compacted = ResultsQueryEngine.Open(snapshot);
        Assert.Equal([runId], compacted.CompactedRuns);
        foreach (var query in Queries)
        {
            Assert.Equal(LocalRuns.Answer(raw, query), LocalRuns.Answer(compacted, query));
        }
    }

    [Fact]
    public async Task A_snapshot_of_an_s3_store_holds_the_raw_files_of_runs_not_yet_compacted()
    {
        var (s3, uri) = await S3Server.Shared.NewStoreAsync();
        var job = Wrapper.Job("echo \"{\\\"v\\\": $BATCHRUNNER_INDEX}\" > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"", "completions: 3");
        var spec = Path.Combine(_temp.Path, "spec.json");
        await File.WriteAllTextAsync(spec, RunIdentity.SpecJson(job));
        for (var index = 0; index < 3; index++)
        {
            var environment = S3Server.Shared.Environment();
            environment["BATCHRUNNER_INDEX"] = $"{index}";
            Assert.Equal(0, (await Wrapper.RunAsync(Wrapper.Arguments(spec, uri, job), environment)).ExitCode);
        }

        var snapshot = _temp.Sub("snapshot");
        Assert.Equal(6, await StoreSnapshot.DownloadAsync(s3, snapshot, CancellationToken.None));

        using var engine = ResultsQueryEngine.Open(snapshot);
        Assert.Empty(engine.CompactedRuns);
        Assert.Equal([0L, 1L, 2L], engine.Execute("SELECT v FROM results ORDER BY v").Rows.Select(r => (long)r[0]!));
    }

    private static ResultsQueryEngine Open(string store) => ResultsQueryEngine.Open(store);

    private static List<List<string>> Answers(string store)
    {
        using var engine = ResultsQueryEngine.Open(store);
        return Queries.Select(q => LocalRuns.Answer(engine, q)).ToList();
    }
}
