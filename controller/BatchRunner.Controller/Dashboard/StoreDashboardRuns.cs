using System.Text;
using BatchRunner.Aws.S3;
using BatchRunner.Core.Costs;
using BatchRunner.Core.Store;
using BatchRunner.Dashboard;
using BatchRunner.Reports;
using BatchRunner.Store;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller.Dashboard;

/// <summary>
/// Reports and logs for the dashboard from the controller's results store (<c>BatchRunner:Results</c>). A report is
/// the heaviest thing a page asks for (DuckDB over the run's rows, after copying them from S3), so one is built at a
/// time, shared by everyone who asks for that run meanwhile, and kept while its run has not moved (a finished run's
/// for good, a running one's for a few seconds), for the few runs looked at last.
/// </summary>
public sealed class StoreDashboardRuns(IOptions<ResultsOptions> options, PriceTable prices, TimeProvider time) : IDashboardRuns, IDisposable
{
    private const int KeptReports = 16;
    private static readonly TimeSpan RunningReportAge = TimeSpan.FromSeconds(10);

    /// <summary>The longest one report may take (a store that does not answer must not hold the next ones forever).</summary>
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(5);

    private readonly SemaphoreSlim _building = new(1, 1);

    /// <summary>The store, opened once (an S3 client is not made per page) on the first report or log asked for.</summary>
    private readonly Lazy<IResultsStore?> _store = new(() => options.Value.IsConfigured
        ? ResultsStores.Open(options.Value.Uri!, options.Value, path => new LocalResultsStore(path))
        : null);
    private readonly Dictionary<string, (string Stamp, DateTimeOffset BuiltAt, SweepReport? Report)> _reports = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Key, string Stamp), Task<SweepReport?>> _inFlight = [];

    public string? Store => options.Value.IsConfigured ? options.Value.Uri : null;

    public Task<SweepReport?> ReportAsync(BatchJobView batchJob, Func<long, long, string> logLink, CancellationToken cancellation)
    {
        if (Store is not { } location || batchJob.RunId is not { } run)
        {
            return Task.FromResult<SweepReport?>(null);
        }

        var key = $"{batchJob.Namespace}/{batchJob.Name}";
        // What the report would show differently: another run, more indexes ended, another phase.
        var stamp = $"{run}/{batchJob.Phase}/{batchJob.Succeeded}/{batchJob.Failed}/{batchJob.Active}";
        Task<SweepReport?> build;
        lock (_reports)
        {
            if (Kept(key, stamp, batchJob.IsFinished) is { } kept)
            {
                return Task.FromResult(kept.Report);
            }

            // Visitors of the same run wait for the one build, which goes on if they leave: the next visit has it.
            if (!_inFlight.TryGetValue((key, stamp), out build!))
            {
                var request = new ReportRequest(batchJob.Name, batchJob.Namespace, run, location, prices,
                    $"the controller's (BatchRunner:Prices; defaults as of {PriceTable.DefaultsAsOf})", (index, attempt) => logLink(index, attempt), time.GetUtcNow());
                // Started outside this lock, so that its end (which takes the lock to leave _inFlight) always comes after this.
                build = Task.Run(() => BuildAsync(key, stamp, request), CancellationToken.None);
                _inFlight[(key, stamp)] = build;
            }
        }

        return build.WaitAsync(cancellation);
    }

    private async Task<SweepReport?> BuildAsync(string key, string stamp, ReportRequest request)
    {
        try
        {
            using var limit = new CancellationTokenSource(BuildTimeout);
            await _building.WaitAsync(limit.Token).ConfigureAwait(false);
            try
            {
                var report = await SweepReports.BuildAsync(_store.Value!, request, limit.Token).ConfigureAwait(false);
                lock (_reports)
                {
                    if (_reports.Count >= KeptReports && !_reports.ContainsKey(key))
                    {
                        _reports.Remove(_reports.MinBy(r => r.Value.BuiltAt).Key);
                    }

                    _reports[key] = (stamp, time.GetUtcNow(), report);
                }

                return report;
            }
            finally
            {
                _building.Release();
            }
        }
        finally
        {
            lock (_reports)
            {
                _inFlight.Remove((key, stamp));
            }
        }
    }

    public async Task<LogTail?> LogAsync(BatchJobView batchJob, int index, int attempt, CancellationToken cancellation)
    {
        if (Store is null || batchJob.RunId is not { } run)
        {
            return null;
        }

        var key = $"{StoreLayout.AttemptPrefix(batchJob.Name, run, index, attempt)}/{StoreLayout.LogsFolder}/stdout.txt";
        var store = _store.Value!;
        StoredObject? log = null;
        await foreach (var item in store.ListAsync(key, cancellation).ConfigureAwait(false))
        {
            if (item.Key == key)
            {
                log = item;
                break;
            }
        }

        if (log is null)
        {
            return null;
        }

        if (log.Size <= DashboardEndpoints.LogTailBytes)
        {
            var whole = await store.GetBytesAsync(key, cancellation).ConfigureAwait(false);
            return whole is null ? null : new LogTail(whole.Length, Encoding.UTF8.GetString(whole), Truncated: false);
        }

        // A workload may print gigabytes: only the end is read, from a copy on disk that is removed after.
        var copy = Path.Combine(Path.GetTempPath(), $"batchrunner-log-{Guid.NewGuid():N}");
        try
        {
            await store.DownloadAsync(key, copy, cancellation).ConfigureAwait(false);
            using var file = File.OpenHandle(copy);
            var length = RandomAccess.GetLength(file);
            var tail = new byte[Math.Min(length, DashboardEndpoints.LogTailBytes)];
            var read = await RandomAccess.ReadAsync(file, tail, length - tail.Length, cancellation).ConfigureAwait(false);
            return new LogTail(length, Encoding.UTF8.GetString(tail, 0, read), Truncated: true);
        }
        finally
        {
            File.Delete(copy);
        }
    }

    public void Dispose()
    {
        _building.Dispose();
        if (_store.IsValueCreated)
        {
            (_store.Value as IDisposable)?.Dispose();
        }
    }

    /// <summary>A report kept for this run as it stands (a finished run's for good); the caller holds the lock.</summary>
    private (string Stamp, DateTimeOffset BuiltAt, SweepReport? Report)? Kept(string key, string stamp, bool finished) =>
        _reports.TryGetValue(key, out var kept) && kept.Stamp == stamp && (finished || time.GetUtcNow() - kept.BuiltAt < RunningReportAge) ? kept : null;
}
