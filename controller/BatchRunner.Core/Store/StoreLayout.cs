using System.Globalization;

namespace BatchRunner.Core.Store;

/// <summary>
/// The results layout, the same under a local root and an S3 prefix, partitioned Hive-style so Athena and
/// DuckDB read it as tables:
/// <code>
/// batchjob=NAME/run=ID/_spec.json                             the dispatched spec (cluster backends)
/// batchjob=NAME/run=ID/_run.json                              the run's manifest (compaction included)
/// batchjob=NAME/run=ID/compacted/results/part-N.parquet       the compacted tables, once the manifest says so
/// batchjob=NAME/run=ID/compacted/indexes/part-0.parquet
/// batchjob=NAME/run=ID/index=I/attempt=A/ledger.json          one ledger row per attempt (table "indexes")
/// batchjob=NAME/run=ID/index=I/attempt=A/output/...           the files the attempt wrote (table "results")
/// batchjob=NAME/run=ID/index=I/attempt=A/logs/stdout.txt      its standard output and error, when not empty
/// </code>
/// Each attempt has its own folder, so a failed attempt's partial output never mixes with a successful one's.
/// </summary>
public static class StoreLayout
{
    public const string LedgerFile = "ledger.json";
    public const string OutputFolder = "output";
    public const string LogsFolder = "logs";
    public const string RunManifestFile = "_run.json";
    public const string SpecFile = "_spec.json";
    public const string CompactedFolder = "compacted";

    /// <summary>Where compaction uploads its files before they replace the compacted ones (ignored by readers: it starts with _).</summary>
    public const string StagingFolder = "_staging";

    public static string RunPrefix(string batchJob, string runId) => $"batchjob={batchJob}/run={runId}";

    public static string AttemptPrefix(string batchJob, string runId, int index, int attempt) =>
        string.Create(CultureInfo.InvariantCulture, $"{RunPrefix(batchJob, runId)}/index={index}/attempt={attempt}");

    public static string LedgerKey(string batchJob, string runId, int index, int attempt) =>
        $"{AttemptPrefix(batchJob, runId, index, attempt)}/{LedgerFile}";

    public static string OutputPrefix(string batchJob, string runId, int index, int attempt) =>
        $"{AttemptPrefix(batchJob, runId, index, attempt)}/{OutputFolder}";

    public static string RunManifestKey(string batchJob, string runId) => $"{RunPrefix(batchJob, runId)}/{RunManifestFile}";

    public static string SpecKey(string batchJob, string runId) => $"{RunPrefix(batchJob, runId)}/{SpecFile}";

    /// <summary>
    /// Where a store that is not the local backend's (S3, a folder the results wrapper writes) keeps the latest succeeded
    /// attempt of a point (<see cref="StoredPoint"/>), per namespace: no run of another tenant finds it.
    /// </summary>
    public static string PointKey(string ns, string pointKey) => $"{PointsPrefix(ns)}{pointKey}.json";

    /// <summary>Every point of a namespace (<see cref="PointKey"/>) lies under this prefix.</summary>
    public static string PointsPrefix(string ns) => $"points/namespace={ns}/";

    public static string IndexPrefix(string batchJob, string runId, int index) =>
        string.Create(CultureInfo.InvariantCulture, $"{RunPrefix(batchJob, runId)}/index={index}");

    /// <summary>The folder of one compacted table of a run (<c>results</c> or <c>indexes</c>).</summary>
    public static string CompactedPrefix(string batchJob, string runId, string table) =>
        $"{RunPrefix(batchJob, runId)}/{CompactedFolder}/{table}";

    public static string CompactedKey(string batchJob, string runId, string table, int part) =>
        string.Create(CultureInfo.InvariantCulture, $"{CompactedPrefix(batchJob, runId, table)}/part-{part:D5}.parquet");

    public static string StagingPrefix(string batchJob, string runId) => $"{RunPrefix(batchJob, runId)}/{CompactedFolder}/{StagingFolder}";

    /// <summary>The attempt number in a key's <c>attempt=A</c> segment, if it has one.</summary>
    public static int? AttemptOf(string key)
    {
        const string marker = "/attempt=";
        var at = key.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var digits = key.AsSpan(at + marker.Length);
        var end = digits.IndexOf('/');
        return int.TryParse(end < 0 ? digits : digits[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var attempt) ? attempt : null;
    }

    /// <summary>Glob of every ledger row under a root.</summary>
    public const string LedgerGlob = "batchjob=*/run=*/index=*/attempt=*/" + LedgerFile;

    /// <summary>Glob of every output file with the given extension under a root.</summary>
    public static string OutputGlob(string extension) => $"batchjob=*/run=*/index=*/attempt=*/{OutputFolder}/**/*.{extension}";
}
