using Prometheus;

namespace BatchRunner.Aws.Intake;

/// <summary>
/// The intake's Prometheus metrics, created in the registry given (the controller's, so <c>/metrics</c> shows
/// them; a test's own, so it can read them).
/// </summary>
public sealed class IntakeMetrics
{
    public IntakeMetrics(CollectorRegistry registry)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        Messages = factory.CreateCounter(
            "batchrunner_intake_messages_total",
            "Queue messages handled, by outcome: created (a new BatchJob), duplicate (already recorded), dead_lettered, retried (left for redelivery), released (returned on shutdown).",
            "outcome");
        Rejected = factory.CreateCounter(
            "batchrunner_intake_rejected_total", "Requests refused and dead-lettered, by reason.", "reason");
        SinkErrors = factory.CreateCounter(
            "batchrunner_intake_sink_errors_total", "Transient failures recording a job (the message is retried with backoff).");
        SqsErrors = factory.CreateCounter(
            "batchrunner_intake_sqs_errors_total", "Failed SQS calls or batch entries, by operation.", "operation");
        VisibilityExtensions = factory.CreateCounter(
            "batchrunner_intake_visibility_extensions_total", "Visibility timeouts extended for messages still being processed.");
        InFlight = factory.CreateGauge(
            "batchrunner_intake_in_flight_messages", "Messages received and not yet deleted or released.");
        ProcessingDuration = factory.CreateHistogram(
            "batchrunner_intake_processing_duration_seconds", "From receiving a message to knowing what to do with it (recorded, refused, retried).",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 18) });
    }

    public Counter Messages { get; }
    public Counter Rejected { get; }
    public Counter SinkErrors { get; }
    public Counter SqsErrors { get; }
    public Counter VisibilityExtensions { get; }
    public Gauge InFlight { get; }
    public Histogram ProcessingDuration { get; }
}
