using System.Globalization;

namespace BatchRunner.Core.Store;

/// <summary>
/// The results layout, the same under a local root and an S3 prefix, partitioned Hive-style so Athena and
/// DuckDB read it as tables:
/// <code>
/// batchjob=NAME/run=ID/_run.json                              the run's manifest
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

    public static string RunPrefix(string batchJob, string runId) => $"batchjob={batchJob}/run={runId}";

    public static string AttemptPrefix(string batchJob, string runId, int index, int attempt) =>
        string.Create(CultureInfo.InvariantCulture, $"{RunPrefix(batchJob, runId)}/index={index}/attempt={attempt}");

    public static string LedgerKey(string batchJob, string runId, int index, int attempt) =>
        $"{AttemptPrefix(batchJob, runId, index, attempt)}/{LedgerFile}";

    public static string OutputPrefix(string batchJob, string runId, int index, int attempt) =>
        $"{AttemptPrefix(batchJob, runId, index, attempt)}/{OutputFolder}";

    public static string RunManifestKey(string batchJob, string runId) => $"{RunPrefix(batchJob, runId)}/{RunManifestFile}";

    /// <summary>Glob of every ledger row under a root.</summary>
    public const string LedgerGlob = "batchjob=*/run=*/index=*/attempt=*/" + LedgerFile;

    /// <summary>Glob of every output file with the given extension under a root.</summary>
    public static string OutputGlob(string extension) => $"batchjob=*/run=*/index=*/attempt=*/{OutputFolder}/**/*.{extension}";
}
