using System.Globalization;
using BatchRunner.Aws.S3;
using BatchRunner.Core.Store;
using BatchRunner.Kubernetes.Compaction;
using BatchRunner.Local.Query;
using BatchRunner.Store;

namespace BatchRunner.Controller.Compaction;

/// <summary>
/// The operator's <see cref="IRunCompactor"/>: BatchRunner.Local's <see cref="ResultsCompactor"/> over the run's
/// store, S3 (with the <c>BatchRunner:Results</c> settings for region, endpoint and path style) or a folder. A run
/// whose manifest already records a compaction is left alone, so a restarted controller compacts nothing twice.
/// </summary>
public sealed class StoreRunCompactor(ResultsOptions options, TimeProvider time, ILogger<ResultsCompactor> log) : IRunCompactor
{
    public async Task<CompactionOutcome> CompactAsync(CompactionTarget target, CancellationToken cancellation)
    {
        var store = ResultsStores.Open(target.Store, options, path => new LocalResultsStore(path));
        try
        {
            var manifest = await store.GetBytesAsync(StoreLayout.RunManifestKey(target.BatchJob, target.RunId), cancellation).ConfigureAwait(false);
            if (manifest is not null && CompactionState.Read(manifest) is { } done
                && (target.Reruns == 0 || done.Indexes.Rows == await LedgerRowsAsync(store, target, cancellation).ConfigureAwait(false)))
            {
                return new CompactionOutcome(CompactionResult.AlreadyCompacted, Summary(done.Indexes.Rows, done.Results.Rows, done.Results.Files.Count + done.Indexes.Files.Count, store.Location));
            }

            try
            {
                // Forced: the BatchJob's status, not a manifest written by a runner, says the run has finished.
                var report = await new ResultsCompactor(log, time).CompactAsync(store, target.BatchJob, target.RunId, force: true, cancellation).ConfigureAwait(false);
                return new CompactionOutcome(CompactionResult.Compacted, Summary(report.Indexes, report.Results, report.ResultFiles + 1, store.Location));
            }
            catch (CompactionRefusedException e)
            {
                return new CompactionOutcome(CompactionResult.NothingToCompact, e.Message);
            }
        }
        finally
        {
            (store as IDisposable)?.Dispose();
        }
    }

    /// <summary>Attempts the store holds for the run now (one ledger row each): a rerun's add to those compacted.</summary>
    private static async Task<long> LedgerRowsAsync(IResultsStore store, CompactionTarget target, CancellationToken cancellation)
    {
        var rows = 0L;
        await foreach (var item in store.ListAsync(StoreLayout.RunPrefix(target.BatchJob, target.RunId) + "/", cancellation).ConfigureAwait(false))
        {
            if (item.Key.EndsWith("/" + StoreLayout.LedgerFile, StringComparison.Ordinal))
            {
                rows++;
            }
        }

        return rows;
    }

    private static string Summary(long attempts, long results, int files, string location) => string.Create(
        CultureInfo.InvariantCulture, $"{attempts} attempt(s) and {results} result row(s) compacted into {files} Parquet file(s) in {location}; queries read them from now on");
}
