using System.Diagnostics;
using BatchRunner.Backends;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Scheduling;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Compaction;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>Settings of the operator loop (bound and validated by the host).</summary>
/// <param name="Backends">The host's backends besides Kubernetes (AWS Batch, when it has it; any other registered).</param>
/// <param name="Disabled">Backends the host knows but does not run, and why: BatchJobs naming them are refused, saying so.</param>
/// <param name="Compactor">Compacts finished runs in their results store, when the host has one; the leader does it.</param>
public sealed record OperatorSettings(
    int Workers,
    DispatchSettings Dispatch,
    string Component = "batchrunner-controller",
    IReadOnlyList<IBatchBackend>? Backends = null,
    IRunCompactor? Compactor = null,
    CompactionSettings? Compaction = null,
    IReadOnlyList<DisabledBackend>? Disabled = null,
    BatchRunner.Core.Costs.PriceTable? Prices = null);

/// <summary>
/// The operator while it leads: informers for BatchJobs and their Jobs feed a de-duplicating, rate-limited
/// work queue; workers reconcile one BatchJob at a time each, never the same one twice at once.
/// </summary>
public sealed class BatchJobOperator(IKubernetes client, OperatorSettings settings, ControllerMetrics metrics, TimeProvider time, ILoggerFactory logs)
{
    private readonly ILogger<BatchJobOperator> _log = logs.CreateLogger<BatchJobOperator>();

    private static readonly TimeSpan QueueSyncTimeout = TimeSpan.FromSeconds(10);

    private volatile Informer<BatchJobObject>? _batchJobs;
    private volatile Informer<V1Job>? _jobs;
    private readonly Lock _rehearsalGate = new();
    private Task? _rehearsal;

    /// <summary>True once both informers have listed; a leader is ready from then on.</summary>
    public bool HasSynced => _batchJobs?.HasSynced == true && _jobs?.HasSynced == true;

    /// <summary>Runs until cancelled (leadership lost, or shutdown).</summary>
    public async Task RunAsync(CancellationToken cancellation)
    {
        var version = await ReadVersionAsync(cancellation).ConfigureAwait(false);
        var capabilities = ClusterCapabilities.FromVersion(version.Major, version.Minor);
        _log.LogInformation("Operating on Kubernetes {Version}; Indexed Jobs {Indexed}, backoffLimitPerIndex {PerIndex}",
            version.GitVersion, capabilities.IndexedJobs, capabilities.BackoffLimitPerIndex);
        if (!capabilities.IndexedJobs)
        {
            _log.LogWarning("Kubernetes {Version} predates Indexed Jobs: BatchJobs are dispatched but their pods get no index; BatchJobs say so in a Degraded condition", version.GitVersion);
        }

        using var queue = new WorkQueue<string>(time);
        var batchJobs = new Informer<BatchJobObject>("batchjobs", new CustomObjectListWatch<BatchJobObject, BatchJobObjectList>(client, BatchJobResource.Plural), logs.CreateLogger<Informer<BatchJobObject>>(), time);
        var jobs = new Informer<V1Job>("jobs", new ManagedJobListWatch(client), logs.CreateLogger<Informer<V1Job>>(), time);
        var queues = new Informer<QueueObject>("queues", new CustomObjectListWatch<QueueObject, QueueObjectList>(client, QueueResource.Plural), logs.CreateLogger<Informer<QueueObject>>(), time);
        var pressure = new DispatchPressure(time);
        var api = new KubernetesClusterApi(client, batchJobs, jobs, capabilities, settings.Component, time, logs.CreateLogger<KubernetesClusterApi>()) { Pressure = pressure };
        var board = new AdmissionBoard();
        var specs = new ParsedSpecs();
        batchJobs.Changed += (key, batchJob) => EnqueueBatchJob(queue, api, pressure, board, specs, key, batchJob);
        jobs.Changed += (key, job) => EnqueueOwner(queue, pressure, key, job);
        _batchJobs = batchJobs;
        _jobs = jobs;
        using var phaseGauge = new PhaseGauge(metrics, batchJobs);

        var compaction = settings.Compactor is { } compactor ? new CompactionWorker(compactor, settings.Compaction ?? CompactionSettings.Default, time, logs.CreateLogger<CompactionWorker>(), metrics) : null;
        var backends = BatchJobReconciler.Registry(api, settings.Dispatch, logs, settings.Backends ?? [], settings.Disabled ?? [], time);
        using var scheduler = new QueueScheduler(new ClusterQueueState(client, batchJobs, queues), board, backends.Names, queue.Add, metrics, time, logs.CreateLogger<QueueScheduler>(), specs);
        batchJobs.Changed += (_, _) => scheduler.Poke();
        queues.Changed += (_, _) => scheduler.Poke();
        var reconciler = new BatchJobReconciler(api, backends, settings.Dispatch.Results?.Uri, time, logs.CreateLogger<BatchJobReconciler>(), compaction, board, settings.Prices, specs);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var informers = new[] { batchJobs.RunAsync(stop.Token), jobs.RunAsync(stop.Token), queues.RunAsync(stop.Token), api.SendEventsAsync(stop.Token), pressure.RunAsync(queue.Add, stop.Token) };
        var scheduling = Task.CompletedTask;
        // A compaction that settled wakes its BatchJob up, so its condition says so.
        var compacting = compaction?.RunAsync(queue.Add, stop.Token) ?? Task.CompletedTask;
        try
        {
            await Task.WhenAll(batchJobs.WaitForSyncAsync(stop.Token), jobs.WaitForSyncAsync(stop.Token)).ConfigureAwait(false);
            await WaitForQueuesAsync(queues, stop.Token).ConfigureAwait(false);
            await RehearseAsync(stop.Token).ConfigureAwait(false);
            _log.LogInformation("Caches synced: {BatchJobs} BatchJobs, {Jobs} Jobs, {Queues} Queues; starting the scheduler and {Workers} workers",
                batchJobs.Items.Count, jobs.Items.Count, queues.Items.Count, settings.Workers);
            scheduling = scheduler.RunAsync(stop.Token);
            var workers = Enumerable.Range(0, settings.Workers).Select(_ => WorkAsync(queue, reconciler, pressure, stop.Token)).ToArray();
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            queue.ShutDown();
            await Task.WhenAll([.. informers, compacting, scheduling]).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Walks the dispatch path once in memory (<see cref="OperatorRehearsal"/>), the first time it is called; the host
    /// calls it on start, so a standby is ready before it leads, and a leader waits for it before its workers start. It
    /// never fails: a rehearsal that breaks is logged, and the operator goes on without it.
    /// </summary>
    public Task RehearseAsync(CancellationToken cancellation)
    {
        lock (_rehearsalGate)
        {
            return _rehearsal ??= Task.Run(() => RehearseOnceAsync(cancellation), CancellationToken.None);
        }
    }

    private async Task RehearseOnceAsync(CancellationToken cancellation)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var outcome = await OperatorRehearsal.RunAsync(settings.Dispatch, time, cancellation).ConfigureAwait(false);
            _log.LogInformation("Rehearsed the dispatch path in memory in {Milliseconds:F0} ms (a Job of {Bytes} bytes, status {Phase})",
                Stopwatch.GetElapsedTime(started).TotalMilliseconds, outcome.JobBytes, outcome.Phase);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Shutting down before it finished.
        }
        catch (Exception e)
        {
            _log.LogWarning(e, "The rehearsal of the dispatch path failed; the operator goes on without it");
        }
    }

    /// <summary>
    /// The API server's version, asked until it answers: an API server restarting, or a connection refused just
    /// as this replica starts to lead, is waited out as the informers wait out a failed list, not a reason to exit.
    /// </summary>
    private async Task<VersionInfo> ReadVersionAsync(CancellationToken cancellation)
    {
        for (var failures = 1; ; failures++)
        {
            try
            {
                return await client.Version.GetCodeAsync(cancellation).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
            {
                var delay = ApiRetry.After(failures);
                _log.LogWarning("The API server's version could not be read ({Message}; {Failures} in a row); asking again in {Delay}", e.Message, failures, delay);
                await Task.Delay(delay, time, cancellation).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Queues are read before the first cycle, so nothing is admitted against a queue not seen yet. A cluster
    /// without the Queue CRD (an upgrade that did not install it: helm installs crds/ only on a first install)
    /// is scheduled with the default queue alone, and says so.
    /// </summary>
    private async Task WaitForQueuesAsync(Informer<QueueObject> queues, CancellationToken cancellation)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        bounded.CancelAfter(QueueSyncTimeout);
        try
        {
            await queues.WaitForSyncAsync(bounded.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            _log.LogWarning("Queues could not be listed in {Timeout} (is the CRD queues.batchrunner.io installed?): scheduling with the default queue until they can",
                QueueSyncTimeout);
        }
    }

    /// <summary>
    /// Every change but the controller's own status writes (the scheduler still hears of those). A new BatchJob its
    /// queue has not decided for yet is left to the scheduler, whose next cycle reconciles it with its standing; until
    /// then a reconcile could only look and wait (one per BatchJob in a burst), so it is queued only as the fallback.
    /// </summary>
    private static void EnqueueBatchJob(
        WorkQueue<string> queue, KubernetesClusterApi api, DispatchPressure pressure, AdmissionBoard board, ParsedSpecs specs, string key, BatchJobObject? batchJob)
    {
        if (batchJob is { Status: null })
        {
            // New: nothing was written of it yet.
            pressure.Arrived();
        }

        if (batchJob is null)
        {
            api.Forget(key);
        }
        else if (api.IsOwnStatusWrite(batchJob))
        {
            return;
        }
        else if (AwaitsDecision(batchJob, board.Find(key), specs))
        {
            queue.AddAfter(key, BatchJobReconciler.AwaitingDecision);
            return;
        }

        queue.Add(key);
    }

    /// <summary>
    /// Whether a BatchJob waits for its queue's first decision, which reconciles it: new (nothing written of it), no
    /// standing yet, and one the scheduler decides for (a valid spec, not being deleted or cancelled). A BatchJob the
    /// scheduler passes over (an invalid spec, a cancel) is the reconciler's at once, to say so.
    /// </summary>
    public static bool AwaitsDecision(BatchJobObject batchJob, Standing? standing, ParsedSpecs specs) =>
        batchJob is { Status: null, Metadata.DeletionTimestamp: null } && standing is null
        && !BatchJobReconciler.IsCancelRequested(batchJob) && specs.Of(batchJob).IsValid;

    private static void EnqueueOwner(WorkQueue<string> queue, DispatchPressure pressure, string key, V1Job? job)
    {
        if (!IsNewsToOwner(job))
        {
            return;
        }

        if (job?.Status?.StartTime is not null)
        {
            pressure.JobCounted();
        }

        var (ns, name) = ObjectKey.Split(key);
        // A Job's BatchJob has the same name; the label says so even after the Job is gone from the cache.
        var owner = job?.Metadata.Labels is { } labels && labels.TryGetValue(BatchJobResource.BatchJobLabel, out var batchJob) ? batchJob : name;
        queue.Add($"{ns}/{owner}");
    }

    /// <summary>
    /// Whether a Job's change can change its BatchJob's status. A Job the Job controller has not counted yet (no start
    /// time, no counts, no conditions) cannot: the reconcile that created it expects its first count and looks again
    /// when it comes, or once the count window passed, as client-go's controllers keep expectations of their own
    /// creations rather than resync on them. Its creation event would be a reconcile per BatchJob in a burst with
    /// nothing to write. A Job gone or going, or suspended (held by Kueue, which the status says), is news.
    /// </summary>
    public static bool IsNewsToOwner(V1Job? job) =>
        job is null || job.Metadata.DeletionTimestamp is not null || job.Spec?.Suspend == true
        || job.Status is { } status && (status.StartTime is not null || status.Active > 0 || status.Succeeded > 0 || status.Failed > 0 || status.Conditions is { Count: > 0 });

    private async Task WorkAsync(WorkQueue<string> queue, BatchJobReconciler reconciler, DispatchPressure pressure, CancellationToken cancellation)
    {
        while (!cancellation.IsCancellationRequested)
        {
            string key;
            try
            {
                key = await queue.GetAsync(cancellation).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            metrics.QueueDepth.Set(queue.Depth);
            var started = Stopwatch.GetTimestamp();
            try
            {
                var result = await reconciler.ReconcileAsync(key, cancellation).ConfigureAwait(false);
                queue.Forget(key);
                queue.Reschedule(key, result.RequeueAfter);

                if (!result.AwaitsReport)
                {
                    pressure.Forget(key);
                }
                else if (pressure.Busy || pressure.Counting)
                {
                    pressure.Defer(key);
                }

                metrics.Reconciles.WithLabels("success").Inc();
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Conflicts, 5xx, timeouts: back off this key alone; the others keep flowing.
                var delay = queue.AddRateLimited(key);
                metrics.Reconciles.WithLabels("error").Inc();
                metrics.ReconcileErrors.Inc();
                if (ApiFailure.IsExpected(e))
                {
                    _log.LogWarning("Reconcile of {BatchJob} failed ({Failures} in a row): {Error}; retrying in {Delay}", key, queue.Failures(key), ApiFailure.Describe(e), delay);
                }
                else
                {
                    _log.LogWarning(e, "Reconcile of {BatchJob} failed ({Failures} in a row); retrying in {Delay}", key, queue.Failures(key), delay);
                }
            }
            finally
            {
                metrics.ReconcileDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
                queue.Done(key);
            }
        }
    }

    /// <summary>Counts BatchJobs by phase from the cache when metrics are scraped.</summary>
    private sealed class PhaseGauge : IDisposable
    {
        private readonly ControllerMetrics _metrics;
        private readonly Informer<BatchJobObject> _batchJobs;

        public PhaseGauge(ControllerMetrics metrics, Informer<BatchJobObject> batchJobs)
        {
            _metrics = metrics;
            _batchJobs = batchJobs;
            metrics.Registry.AddBeforeCollectCallback(Update);
        }

        private bool Disposed { get; set; }

        public void Dispose() => Disposed = true;

        private void Update()
        {
            if (Disposed)
            {
                return;
            }

            var counts = _batchJobs.Items.GroupBy(b => BatchJobStatus.FromJson(b.Status).Phase ?? RunPhase.Pending).ToDictionary(g => g.Key, g => g.Count());
            foreach (var phase in Enum.GetValues<RunPhase>())
            {
                _metrics.BatchJobsByPhase.WithLabels(phase.ToString()).Set(counts.GetValueOrDefault(phase));
            }
        }
    }
}
