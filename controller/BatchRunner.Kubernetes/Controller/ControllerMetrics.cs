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
        QueueDepth = factory.CreateGauge("batchrunner_workqueue_depth", "BatchJobs waiting in the work queue.");
        BatchJobsByPhase = factory.CreateGauge("batchrunner_batchjobs", "BatchJobs the controller sees, by phase.", "phase");
        Leader = factory.CreateGauge("batchrunner_leader", "1 while this replica leads: it holds the leader Lease, or runs without leader election.");
    }

    public CollectorRegistry Registry { get; }
    public Counter Reconciles { get; }
    public Counter ReconcileErrors { get; }
    public Histogram ReconcileDuration { get; }
    public Gauge QueueDepth { get; }
    public Gauge BatchJobsByPhase { get; }
    public Gauge Leader { get; }
}
