using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Core.Store;

namespace BatchRunner.Store;

/// <summary>One compacted table of a run: its Parquet files (keys relative to the run's folder), rows, bytes, schema.</summary>
public sealed record CompactedTable(IReadOnlyList<string> Files, long Rows, long Bytes, IReadOnlyList<ColumnType> Schema);

public sealed record ColumnType(string Name, string Type);

/// <summary>
/// The compaction section of a run manifest (<c>_run.json</c>). Its presence with every file listed is what makes
/// readers take a run from Parquet instead of its raw files; it is written last, after the files, and removed
/// first when a run is compacted again, so readers only ever see complete Parquet or the raw files, never both.
/// </summary>
/// <param name="ResultKeys">Each output column of the results table with the key the workload wrote, when the manifest records it.</param>
public sealed record CompactionState(CompactedTable Results, CompactedTable Indexes, IReadOnlyDictionary<string, string>? ResultKeys = null)
{
    public const string Property = "compaction";

    /// <summary>The compaction of a manifest, or null when it has none (the run is read from its raw files).</summary>
    public static CompactionState? Read(ReadOnlySpan<byte> manifest)
    {
        try
        {
            var root = JsonNode.Parse(manifest);
            if (root?[Property] is not JsonObject compaction || (string?)compaction["state"] != "complete")
            {
                return null;
            }

            var keys = compaction["results"]?["columns"] is JsonArray columns
                ? columns.ToDictionary(c => (string)c!["name"]!, c => (string)c!["key"]!, StringComparer.Ordinal)
                : null;
            return new CompactionState(Table(compaction["results"]), Table(compaction["indexes"]), keys);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NullReferenceException or ArgumentException)
        {
            // A manifest that cannot be read says nothing about compaction: the raw files are the truth.
            return null;
        }
    }

    private static CompactedTable Table(JsonNode? node) => new(
        node!["files"]!.AsArray().Select(f => (string)f!).ToList(),
        (long)node["rows"]!,
        (long)node["bytes"]!,
        node["schema"]!.AsArray().Select(c => new ColumnType((string)c!["name"]!, (string)c["type"]!)).ToList());

    /// <summary>The manifest with this compaction (and its details) set, everything else kept.</summary>
    public static byte[] With(ReadOnlySpan<byte> manifest, JsonObject compaction, string batchJob, string runId)
    {
        var root = Parse(manifest);
        root["batchjob"] ??= batchJob;
        root["run"] ??= runId;
        root[Property] = compaction;
        return JsonSerializer.SerializeToUtf8Bytes(root, ManifestJson.Default.JsonObject);
    }

    /// <summary>The manifest without its compaction: readers go back to the raw files.</summary>
    public static byte[] Without(ReadOnlySpan<byte> manifest)
    {
        var root = Parse(manifest);
        root.Remove(Property);
        return JsonSerializer.SerializeToUtf8Bytes(root, ManifestJson.Default.JsonObject);
    }

    private static JsonObject Parse(ReadOnlySpan<byte> manifest)
    {
        if (manifest.IsEmpty)
        {
            return [];
        }

        try
        {
            return JsonNode.Parse(manifest) as JsonObject ?? [];
        }
        catch (JsonException)
        {
            return [];
        }
    }

    /// <summary>The runs under a local root whose manifests say they are compacted, with their files' absolute paths.</summary>
    public static IReadOnlyDictionary<string, (string RunFolder, CompactionState State)> FindCompacted(string root)
    {
        var found = new Dictionary<string, (string, CompactionState)>(StringComparer.Ordinal);
        if (!Directory.Exists(root))
        {
            return found;
        }

        foreach (var jobFolder in Directory.EnumerateDirectories(root, "batchjob=*"))
        {
            foreach (var runFolder in Directory.EnumerateDirectories(jobFolder, "run=*"))
            {
                var manifest = Path.Combine(runFolder, StoreLayout.RunManifestFile);
                if (!File.Exists(manifest) || Read(File.ReadAllBytes(manifest)) is not { } state)
                {
                    continue;
                }

                // A listed file that is missing means the compaction is not whole: read the raw files.
                if (state.Results.Files.Concat(state.Indexes.Files).All(f => File.Exists(Path.Combine(runFolder, f))))
                {
                    found[Path.GetFileName(runFolder)["run=".Length..]] = (runFolder, state);
                }
            }
        }

        return found;
    }
}
