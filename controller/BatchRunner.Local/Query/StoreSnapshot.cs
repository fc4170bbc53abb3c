using BatchRunner.Core.Store;
using BatchRunner.Store;

namespace BatchRunner.Local.Query;

/// <summary>
/// What DuckDB needs of a remote store (S3) to answer queries, copied to a local folder in the same layout: the
/// Parquet and manifest of each compacted run, the ledger rows and output files of every other run; never logs
/// or staged files. DuckDB's own S3 access (httpfs) is an extension it downloads, which an offline machine lacks.
/// </summary>
public static class StoreSnapshot
{
    /// <summary>Copies what the tables are made of under <paramref name="localRoot"/>; returns the number of files copied.</summary>
    public static Task<int> DownloadAsync(IResultsStore store, string localRoot, CancellationToken cancellation) =>
        DownloadAsync(store, localRoot, "batchjob=", cancellation);

    /// <summary>The same for the runs under <paramref name="prefix"/> only (one run's: <see cref="StoreLayout.RunPrefix"/> and a slash).</summary>
    public static async Task<int> DownloadAsync(IResultsStore store, string localRoot, string prefix, CancellationToken cancellation)
    {
        var byRun = new Dictionary<string, List<StoredObject>>(StringComparer.Ordinal);
        await foreach (var item in store.ListAsync(prefix, cancellation).ConfigureAwait(false))
        {
            var parts = item.Key.Split('/', 3);
            if (parts.Length == 3 && parts[1].StartsWith("run=", StringComparison.Ordinal))
            {
                var run = $"{parts[0]}/{parts[1]}";
                if (!byRun.TryGetValue(run, out var objects))
                {
                    byRun[run] = objects = [];
                }

                objects.Add(item);
            }
        }

        var copied = 0;
        foreach (var (run, objects) in byRun)
        {
            var manifestKey = $"{run}/{StoreLayout.RunManifestFile}";
            var manifest = objects.Any(o => o.Key == manifestKey) ? await store.GetBytesAsync(manifestKey, cancellation).ConfigureAwait(false) : null;
            var compaction = manifest is null ? null : CompactionState.Read(manifest);
            var wanted = compaction is not null
                ? compaction.Results.Files.Concat(compaction.Indexes.Files).Select(f => $"{run}/{f}").Append(manifestKey).ToHashSet(StringComparer.Ordinal)
                : null;
            foreach (var item in objects)
            {
                var take = wanted?.Contains(item.Key)
                    ?? (item.Key.EndsWith("/" + StoreLayout.LedgerFile, StringComparison.Ordinal)
                        || item.Key.Contains("/" + StoreLayout.OutputFolder + "/", StringComparison.Ordinal)
                        || item.Key == manifestKey);
                if (take)
                {
                    await store.DownloadAsync(item.Key, Path.Combine(localRoot, item.Key), cancellation).ConfigureAwait(false);
                    copied++;
                }
            }
        }

        return copied;
    }
}
