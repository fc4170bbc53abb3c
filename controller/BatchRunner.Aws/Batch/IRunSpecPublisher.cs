namespace BatchRunner.Aws.Batch;

/// <summary>
/// Writes a run's resolved spec to <c>&lt;store&gt;/batchjob=NAME/run=ID/_spec.json</c>, where the results wrapper
/// (<c>batchrunner-exec --spec …</c>) in every AWS Batch container reads it. Defined here, where the dispatcher
/// consumes it; implemented over the results store (S3 or a folder) by <c>BatchRunner.Aws.S3.StoreRunSpecPublisher</c>. Publishing again with the same content is
/// harmless (the dispatcher publishes before each run's first submission, and again after a restart).
/// </summary>
public interface IRunSpecPublisher
{
    /// <summary>Stores the spec; returns its location as the wrapper reads it (a path, or <c>s3://bucket/key</c>).</summary>
    /// <exception cref="Protocol.AwsConfigurationException">This publisher cannot write to that store.</exception>
    Task<string> PublishAsync(string store, string batchJob, string runId, string specJson, CancellationToken cancellation);
}
