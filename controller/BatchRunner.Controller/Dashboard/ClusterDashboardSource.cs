using System.Collections.Concurrent;
using BatchRunner.Dashboard;
using BatchRunner.Kubernetes;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Controller;
using k8s;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller.Dashboard;

/// <summary>
/// The dashboard's read model: informers of its own over every BatchJob and Queue, on every replica (only the
/// leader runs the operator's), kept as the small views the pages show. A page reads the snapshot of the last
/// change, built once for all the requests until the next; nothing a page does calls the API server. The client is
/// the dashboard's own (the host makes it), and disposed with it.
/// </summary>
public sealed class ClusterDashboardSource(IKubernetes client, IOptions<KubernetesOptions> kubernetes, TimeProvider time, ILoggerFactory logs)
    : BackgroundService, IDashboardSource
{
    private readonly ConcurrentDictionary<string, BatchJobView> _batchJobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, QueueView> _queues = new(StringComparer.Ordinal);
    private readonly Lock _building = new();
    private readonly ILogger _log = logs.CreateLogger<ClusterDashboardSource>();
    private long _version;
    private volatile DashboardSnapshot _snapshot = DashboardSnapshot.Empty;
    private volatile Informer<BatchJobObject>? _batchJobInformer;
    private volatile Informer<QueueObject>? _queueInformer;

    public bool HasSynced => !kubernetes.Value.Enabled || (_batchJobInformer?.HasSynced == true && _queueInformer?.HasSynced == true);

    public DashboardSnapshot Current
    {
        get
        {
            // Views change first, then the version: a snapshot built at a version holds every change up to it.
            var version = Interlocked.Read(ref _version);
            var snapshot = _snapshot;
            if (snapshot.Version == version)
            {
                return snapshot;
            }

            lock (_building)
            {
                if (_snapshot.Version < version)
                {
                    _snapshot = new DashboardSnapshot(version, _batchJobs.Values, _queues.Values);
                }

                return _snapshot;
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!kubernetes.Value.Enabled)
        {
            return;
        }

        var batchJobs = new Informer<BatchJobObject>("dashboard-batchjobs", new CustomObjectListWatch<BatchJobObject, BatchJobObjectList>(client, BatchJobResource.Plural),
            logs.CreateLogger<Informer<BatchJobObject>>(), time);
        var queues = new Informer<QueueObject>("dashboard-queues", new CustomObjectListWatch<QueueObject, QueueObjectList>(client, QueueResource.Plural),
            logs.CreateLogger<Informer<QueueObject>>(), time);
        batchJobs.Changed += (key, item) => Keep(_batchJobs, key, item, ClusterViews.Of);
        queues.Changed += (key, item) => Keep(_queues, key, item, ClusterViews.Of);
        (_batchJobInformer, _queueInformer) = (batchJobs, queues);
        await Task.WhenAll(batchJobs.RunAsync(stoppingToken), queues.RunAsync(stoppingToken)).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        base.Dispose();
        client.Dispose();
    }

    private void Keep<TObject, TView>(ConcurrentDictionary<string, TView> views, string key, TObject? item, Func<TObject, TView> view)
        where TObject : class
    {
        try
        {
            if (item is null)
            {
                views.TryRemove(key, out _);
            }
            else
            {
                views[key] = view(item);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // An object the views cannot read must not stop the informer that reported it.
            _log.LogWarning("The dashboard cannot show {Key}: {Error}", key, e.Message);
            views.TryRemove(key, out _);
        }

        Interlocked.Increment(ref _version);
    }
}
