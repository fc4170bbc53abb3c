using System.Globalization;
using System.Text.Json.Nodes;
using BatchRunner.Core.Store;
using BatchRunner.Store;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Local.Query;

/// <summary>What a compaction produced.</summary>
public sealed record CompactionReport(string BatchJob, string RunId, long Indexes, long Results, long ParquetBytes, long RawBytes, int ResultFiles, TimeSpan Duration);

/// <summary>A run cannot be compacted now (it is still running, or it has no ledger rows).</summary>
public sealed class CompactionRefusedException(string message) : Exception(message);

/// <summary>
/// Compacts one finished run: its per-attempt ledger rows and result files become a few Parquet files per table
/// (typed columns, parameters as columns, exactly the rows the raw views show), and the run manifest records
/// rows, bytes and schema. The raw files stay and remain the truth until the manifest says otherwise:
/// 1. build the Parquet locally (raw files read in place, or downloaded from S3 first);
/// 2. upload them under a staging key;
/// 3. take the run's compaction out of its manifest (readers fall back to the raw files);
/// 4. move the staged files into place, deleting parts left from an earlier compaction;
/// 5. write the manifest with the compaction, last.
/// A crash at any step leaves either the raw files in use or a whole compaction; running it again redoes it.
/// </summary>
public sealed class ResultsCompactor(ILogger<ResultsCompactor> log, TimeProvider time)
{
    /// <summary>Parquet files are cut at about this size, so a big run still gives Athena a few large files.</summary>
    public const long TargetFileBytes = 256L * 1024 * 1024;

    public async Task<CompactionReport> CompactAsync(IResultsStore store, string batchJob, string runId, bool force, CancellationToken cancellation)
    {
        var started = time.GetTimestamp();
        var runPrefix = StoreLayout.RunPrefix(batchJob, runId);
        var manifestKey = StoreLayout.RunManifestKey(batchJob, runId);
        var manifest = await store.GetBytesAsync(manifestKey, cancellation).ConfigureAwait(false) ?? [];
        if (!force && Phase(manifest) == "Running")
        {
            throw new CompactionRefusedException($"run {runId} of {batchJob} is running (its manifest says so); compact it when it has finished, or force it");
        }

        // Held while it is used, so a compaction killed half-way leaves a folder the next one removes.
        using var scratch = ScratchFolder.Create("batchrunner-compact-");

        // 1. The raw files where DuckDB can read them.
        var root = store.LocalRoot ?? await DownloadRawAsync(store, runPrefix, Path.Combine(scratch.Path, "raw"), cancellation).ConfigureAwait(false);
        var built = Path.Combine(scratch.Path, "parquet");
        Directory.CreateDirectory(Path.Combine(built, "results"));
        Directory.CreateDirectory(Path.Combine(built, "indexes"));
        JsonObject compaction;
        List<(string Local, string Table, int Part)> files;
        long indexRows, resultRows, rawBytes;
        // The raw files are read once (the ledger rows, then the result lines) and all else works on what was read.
        using (var engine = ResultsQueryEngine.Open(root, new ViewScope(batchJob, runId, RawOnly: true, ReadOnce: true, TempDirectory: Path.Combine(scratch.Path, "duckdb"))))
        {
            engine.Run("CREATE TEMP TABLE compact_indexes AS SELECT * FROM indexes");
            engine.Run("CREATE TEMP TABLE compact_results AS SELECT * FROM results");
            indexRows = (long)engine.Execute("SELECT count(*) FROM compact_indexes").Rows[0][0]!;
            if (indexRows == 0)
            {
                throw new CompactionRefusedException($"run {runId} of {batchJob} has no ledger rows under {store.Location}: nothing to compact");
            }

            resultRows = (long)engine.Execute("SELECT count(*) FROM compact_results").Rows[0][0]!;
            var raw = engine.Execute("SELECT sum(output_files)::BIGINT, sum(output_bytes)::BIGINT, sum(output_malformed)::BIGINT, count(*) FILTER (WHERE status = 'succeeded') FROM compact_indexes").Rows[0];
            rawBytes = Convert.ToInt64(raw[1] ?? 0L, CultureInfo.InvariantCulture);
            var indexesFile = Path.Combine(built, "indexes", "part-00000.parquet");
            engine.Run($"COPY (SELECT * FROM compact_indexes ORDER BY \"index\", attempt) TO {ResultsQueryEngine.Literal(indexesFile)} (FORMAT parquet, COMPRESSION zstd)");
            // One file per ~TargetFileBytes; DuckDB names them data_N.parquet in the folder.
            engine.Run($"""
                COPY (SELECT * FROM compact_results ORDER BY "index") TO {ResultsQueryEngine.Literal(Path.Combine(built, "results"))}
                (FORMAT parquet, COMPRESSION zstd, FILE_SIZE_BYTES {TargetFileBytes}, FILENAME_PATTERN {ResultsQueryEngine.Literal("data_{i}")}, OVERWRITE_OR_IGNORE true)
                """);
            var resultFiles = Directory.EnumerateFiles(Path.Combine(built, "results"), "*.parquet").Order(StringComparer.Ordinal).ToList();
            if (resultFiles.Count == 0)
            {
                // No result rows: still one (empty) file, so the table's schema is recorded and readable.
                var empty = Path.Combine(built, "results", "data_0.parquet");
                engine.Run($"COPY (SELECT * FROM compact_results) TO {ResultsQueryEngine.Literal(empty)} (FORMAT parquet, COMPRESSION zstd)");
                resultFiles = [empty];
            }

            files = [(indexesFile, "indexes", 0), .. resultFiles.Select((f, i) => (f, "results", i))];
            compaction = new JsonObject
            {
                ["state"] = "complete",
                ["compacted_at"] = time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
                ["format"] = "parquet",
                ["results"] = Table(engine, "compact_results", resultRows, files.Where(f => f.Table == "results").ToList(), batchJob, runId, engine.ColumnsOf(batchJob, runId)),
                ["indexes"] = Table(engine, "compact_indexes", indexRows, files.Where(f => f.Table == "indexes").ToList(), batchJob, runId),
                ["raw"] = new JsonObject
                {
                    ["attempts"] = indexRows,
                    ["succeeded"] = Convert.ToInt64(raw[3] ?? 0L, CultureInfo.InvariantCulture),
                    ["output_files"] = Convert.ToInt64(raw[0] ?? 0L, CultureInfo.InvariantCulture),
                    ["output_bytes"] = rawBytes,
                    ["malformed_lines"] = Convert.ToInt64(raw[2] ?? 0L, CultureInfo.InvariantCulture),
                },
                ["mixed_type_columns"] = MixedTypeColumns(engine, batchJob, runId),
            };
        }

        // 2. Stage (a crash from here on leaves staging garbage that the next compaction removes).
        var staging = $"{StoreLayout.StagingPrefix(batchJob, runId)}/{Guid.NewGuid():N}";
        await DeleteAllAsync(store, StoreLayout.StagingPrefix(batchJob, runId) + "/", cancellation).ConfigureAwait(false);
        foreach (var (local, table, part) in files)
        {
            await store.PutFileAsync(StagedKey(staging, table, part), local, cancellation).ConfigureAwait(false);
        }

        // 3. Readers back to the raw files while the compacted files change.
        if (CompactionState.Read(manifest) is not null)
        {
            manifest = CompactionState.Without(manifest);
            await store.PutBytesAsync(manifestKey, manifest, cancellation).ConfigureAwait(false);
        }

        // 4. Into place; parts of an earlier, larger compaction go.
        var keep = files.Select(f => StoreLayout.CompactedKey(batchJob, runId, f.Table, f.Part)).ToHashSet(StringComparer.Ordinal);
        foreach (var table in new[] { "results", "indexes" })
        {
            await foreach (var old in store.ListAsync(StoreLayout.CompactedPrefix(batchJob, runId, table) + "/", cancellation).ConfigureAwait(false))
            {
                if (!keep.Contains(old.Key))
                {
                    await store.DeleteAsync(old.Key, cancellation).ConfigureAwait(false);
                }
            }
        }

        foreach (var (_, table, part) in files)
        {
            await store.MoveAsync(StagedKey(staging, table, part), StoreLayout.CompactedKey(batchJob, runId, table, part), cancellation).ConfigureAwait(false);
        }

        // 5. The manifest, last.
        await store.PutBytesAsync(manifestKey, CompactionState.With(manifest, compaction, batchJob, runId), cancellation).ConfigureAwait(false);
        await DeleteAllAsync(store, StoreLayout.StagingPrefix(batchJob, runId) + "/", cancellation).ConfigureAwait(false);

        var parquetBytes = files.Sum(f => new FileInfo(f.Local).Length);
        var report = new CompactionReport(batchJob, runId, indexRows, resultRows, parquetBytes, rawBytes, files.Count - 1, time.GetElapsedTime(started));
        log.LogInformation(
            "Compacted {BatchJob} run {RunId}: {Indexes} attempts and {Results} result rows into {Files} Parquet file(s) of {ParquetBytes} bytes (raw output {RawBytes} bytes) in {Seconds:F2}s",
            batchJob, runId, indexRows, resultRows, files.Count, parquetBytes, rawBytes, report.Duration.TotalSeconds);
        return report;
    }

    /// <summary>The runs a store holds: (batchjob, run) pairs from its folders or keys.</summary>
    public static async Task<IReadOnlyList<(string BatchJob, string RunId)>> FindRunsAsync(IResultsStore store, string? batchJob, CancellationToken cancellation)
    {
        var runs = new SortedSet<(string, string)>();
        await foreach (var item in store.ListAsync(batchJob is null ? "batchjob=" : $"batchjob={batchJob}/", cancellation).ConfigureAwait(false))
        {
            var parts = item.Key.Split('/');
            if (parts.Length >= 3 && parts[0].StartsWith("batchjob=", StringComparison.Ordinal) && parts[1].StartsWith("run=", StringComparison.Ordinal))
            {
                runs.Add((parts[0]["batchjob=".Length..], parts[1]["run=".Length..]));
            }
        }

        return [.. runs];
    }

    private static JsonObject Table(
        ResultsQueryEngine engine, string table, long rows, List<(string Local, string Table, int Part)> files, string batchJob, string runId, IReadOnlyList<ResultColumn>? columns = null)
    {
        var runPrefix = StoreLayout.RunPrefix(batchJob, runId) + "/";
        var section = new JsonObject
        {
            ["rows"] = rows,
            ["bytes"] = files.Sum(f => new FileInfo(f.Local).Length),
            ["files"] = new JsonArray(files.Select(f => (JsonNode?)StoreLayout.CompactedKey(batchJob, runId, f.Table, f.Part)[runPrefix.Length..]).ToArray()),
            ["schema"] = new JsonArray(engine.Execute($"SELECT column_name, column_type FROM (DESCRIBE {table})").Rows
                .Select(r => (JsonNode?)new JsonObject { ["name"] = (string)r[0]!, ["type"] = (string)r[1]! }).ToArray()),
        };
        if (columns is not null)
        {
            // Which key the workload wrote for each output column (see ResultColumns): the result_columns view reads it.
            section["columns"] = new JsonArray(columns.Select(c => (JsonNode?)new JsonObject { ["key"] = c.Key, ["name"] = c.Name }).ToArray());
        }

        return section;
    }

    /// <summary>Output columns whose values have different JSON types in different indexes (kept as text), with the indexes of each type.</summary>
    private static JsonArray MixedTypeColumns(ResultsQueryEngine engine, string batchJob, string runId)
    {
        var mixed = new JsonArray();
        // A view over the files, or the table they were read into (ViewScope.ReadOnce); neither when no run wrote JSON lines.
        if (Convert.ToInt64(engine.Execute("""
                SELECT (SELECT count(*) FROM duckdb_views() WHERE view_name = 'output_objects') + (SELECT count(*) FROM duckdb_tables() WHERE table_name = 'output_objects')
                """).Rows[0][0], CultureInfo.InvariantCulture) != 1)
        {
            return mixed;
        }

        // Only a key the structure says holds values of more than one kind is looked at row by row (json_each over every
        // object of a large run costs more than the rest of compaction).
        var keys = engine.MixedKeysOf(batchJob, runId);
        if (keys is { Count: 0 })
        {
            return mixed;
        }

        var only = keys is null ? "" : $"WHERE e.key IN ({string.Join(", ", keys.Select(ResultsQueryEngine.Literal))})";
        var rows = engine.Execute($$"""
            WITH typed AS (
                -- Members by json_each, not by JSON path: any key is a member, none is a path to get wrong ("", "*").
                SELECT e.key AS column_name, CAST(o."index" AS BIGINT) AS idx,
                    -- Whole and fractional numbers are one kind: a number column with 0 and 0.5 is DOUBLE, not mixed.
                    CASE e.type WHEN 'UBIGINT' THEN 'NUMBER' WHEN 'BIGINT' THEN 'NUMBER' WHEN 'DOUBLE' THEN 'NUMBER' ELSE e.type END AS type
                FROM output_objects o, json_each(o.json) e
                {{only}}
            ),
            kinds AS (SELECT column_name, type, list(DISTINCT idx ORDER BY idx)[1:20] AS indexes FROM typed WHERE type <> 'NULL' GROUP BY ALL)
            SELECT column_name, type, indexes FROM kinds
            WHERE column_name IN (SELECT column_name FROM kinds GROUP BY column_name HAVING count(*) > 1)
            ORDER BY column_name, type
            """).Rows;
        foreach (var group in rows.GroupBy(r => (string)r[0]!))
        {
            var types = new JsonObject();
            foreach (var row in group)
            {
                types[(string)row[1]!] = JsonNode.Parse(((JsonText)row[2]!).Json);
            }

            mixed.Add((JsonNode)new JsonObject { ["column"] = group.Key, ["types"] = types });
        }

        return mixed;
    }

    private static string StagedKey(string staging, string table, int part) =>
        string.Create(CultureInfo.InvariantCulture, $"{staging}/{table}/part-{part:D5}.parquet");

    private static async Task<string> DownloadRawAsync(IResultsStore store, string runPrefix, string root, CancellationToken cancellation)
    {
        // Only what the tables are made of: ledger rows and output files (not logs, not an earlier compaction).
        await foreach (var item in store.ListAsync(runPrefix + "/index=", cancellation).ConfigureAwait(false))
        {
            if (item.Key.EndsWith("/" + StoreLayout.LedgerFile, StringComparison.Ordinal) || item.Key.Contains("/" + StoreLayout.OutputFolder + "/", StringComparison.Ordinal))
            {
                await store.DownloadAsync(item.Key, Path.Combine(root, item.Key), cancellation).ConfigureAwait(false);
            }
        }

        return root;
    }

    private static async Task DeleteAllAsync(IResultsStore store, string prefix, CancellationToken cancellation)
    {
        var keys = new List<string>();
        await foreach (var item in store.ListAsync(prefix, cancellation).ConfigureAwait(false))
        {
            keys.Add(item.Key);
        }

        foreach (var key in keys)
        {
            await store.DeleteAsync(key, cancellation).ConfigureAwait(false);
        }
    }

    private static string? Phase(byte[] manifest)
    {
        try
        {
            return manifest.Length == 0 ? null : (string?)JsonNode.Parse(manifest)?["phase"];
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException)
        {
            return null;
        }
    }
}
