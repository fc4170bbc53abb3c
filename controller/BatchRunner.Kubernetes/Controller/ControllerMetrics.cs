using Prometheus;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>The controller's Prometheus metrics, in a registry of their own so tests can read them.</summary>
public sealed class ControllerMetrics
{
    public ControllerMetrics(CollectorRegistry registry)
    {
        Registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        Reconciles = factory.CreateCounter("batchrunner_reconciles_total", "Reconciles of BatchJobs, by result.", "result");
        ReconcileErrors = factory.CreateCounter("batchrunner_reconcile_errors_total", "Reconciles that failed and were requeued with backoff.");
        ReconcileDuration = factory.CreateHistogram(
            "batchrunner_reconcile_duration_seconds", "Time one reconcile took.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
        ApiRequests = factory.CreateCounter("batchrunner_api_requests_total", "Calls to the Kubernetes API server (watches excepted), by verb and resource.", "verb", "resource");
        QueueDepth = factory.CreateGauge("batchrunner_workqueue_depth", "BatchJobs waiting in the work queue.");
        BatchJobsByPhase = factory.CreateGauge("batchrunner_batchjobs", "BatchJobs the controller sees, by phase.", "phase");
        Leader = factory.CreateGauge("batchrunner_leader", "1 while this replica leads: it holds the leader Lease, or runs without leader election.");
        QueuePendingIndexes = factory.CreateGauge("batchrunner_queue_pending_indexes", "Indexes wanted and not admitted yet, by queue and tenant.", "queue", "tenant");
        QueueAdmittedIndexes = factory.CreateGauge("batchrunner_queue_admitted_indexes", "Indexes admitted to run at once, by queue and tenant.", "queue", "tenant");
        TenantShare = factory.CreateGauge("batchrunner_queue_tenant_share", "The dominant share of a queue's quota a tenant holds now (0 to 1).", "queue", "tenant");
        AdmissionWait = factory.CreateHistogram(
            "batchrunner_admission_wait_seconds", "From a BatchJob's creation to its first admitted index, by queue.",
            new HistogramConfiguration { LabelNames = ["queue"], Buckets = Histogram.ExponentialBuckets(0.1, 2, 18) });
        SchedulerCycleDuration = factory.CreateHistogram(
            "batchrunner_scheduler_cycle_duration_seconds", "Time one scheduling cycle took (read the state, decide, publish).",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0001, 2, 18) });
        Compactions = factory.CreateCounter(
            "batchrunner_compactions_total", "Compactions of finished runs' results, by result: compacted, nothing_to_compact, failed (retried with backoff).", "result");
        CompactionDuration = factory.CreateHistogram(
            "batchrunner_compaction_duration_seconds", "Time one compaction of a run's results took, failed ones included.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.05, 2, 16) });
    }

    public CollectorRegistry Registry { get; }
    public Counter Reconciles { get; }
    public Counter ReconcileErrors { get; }
    public Histogram ReconcileDuration { get; }
    public Counter ApiRequests { get; }
    public Gauge QueueDepth { get; }
    public Gauge BatchJobsByPhase { get; }
    public Gauge Leader { get; }
    public Gauge QueuePendingIndexes { get; }
    public Gauge QueueAdmittedIndexes { get; }
    public Gauge TenantShare { get; }
    public Histogram AdmissionWait { get; }
    public Histogram SchedulerCycleDuration { get; }
    public Counter Compactions { get; }
    public Histogram CompactionDuration { get; }

    /// <summary>A scheduling cycle's queues: indexes pending and admitted, and each tenant's share, by queue and tenant.</summary>
    public void RecordQueues(IEnumerable<BatchRunner.Core.Scheduling.QueueSummary> queues)
    {
        foreach (var queue in queues)
        {
            foreach (var tenant in queue.Tenants)
            {
                QueuePendingIndexes.WithLabels(queue.Name, tenant.Name).Set(tenant.PendingIndexes);
                QueueAdmittedIndexes.WithLabels(queue.Name, tenant.Name).Set(tenant.AdmittedIndexes);
                TenantShare.WithLabels(queue.Name, tenant.Name).Set(tenant.Share);
            }
        }
    }
}
