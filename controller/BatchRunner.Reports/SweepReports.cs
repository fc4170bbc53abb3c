using BatchRunner.Core.Store;
using BatchRunner.Local.Query;

namespace BatchRunner.Reports;

/// <summary>A run's report from the store it is in: what <c>batchrunner report</c> and the controller's dashboard both draw.</summary>
public static class SweepReports
{
    /// <summary>
    /// The report, aggregated by DuckDB over the store's views of that run only, or null when the store holds no
    /// attempt of it. An S3 store's run is copied to a temporary folder first (its Parquet if compacted, else its
    /// ledger rows and outputs) and removed after.
    /// </summary>
    public static async Task<SweepReport?> BuildAsync(IResultsStore store, ReportRequest request, CancellationToken cancellation)
    {
        if (store.LocalRoot is { } root)
        {
            return await Task.Run(() => Build(root, request), CancellationToken.None).WaitAsync(cancellation).ConfigureAwait(false);
        }

        var snapshot = Directory.CreateTempSubdirectory("batchrunner-report-");
        try
        {
            await StoreSnapshot.DownloadAsync(store, snapshot.FullName, StoreLayout.RunPrefix(request.BatchJob, request.Run) + "/", cancellation).ConfigureAwait(false);
            return await Task.Run(() => Build(snapshot.FullName, request), CancellationToken.None).WaitAsync(cancellation).ConfigureAwait(false);
        }
        finally
        {
            snapshot.Delete(recursive: true);
        }
    }

    private static SweepReport? Build(string root, ReportRequest request)
    {
        using var engine = ResultsQueryEngine.Open(root, new ViewScope(request.BatchJob, request.Run, ReadOnce: true));
        return SweepReportBuilder.Build(engine, request);
    }
}
