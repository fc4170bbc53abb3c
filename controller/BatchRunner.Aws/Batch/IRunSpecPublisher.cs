using BatchRunner.Core.Store;

namespace BatchRunner.Aws.Batch;

/// <summary>
/// Writes a run's resolved spec to <c>&lt;store&gt;/batchjob=NAME/run=ID/_spec.json</c>, where the results wrapper
/// (<c>batchrunner-exec --spec …</c>) in every AWS Batch container reads it. Defined here, where the dispatcher
/// consumes it; the S3 implementation belongs with the results store. Publishing again with the same content is
/// harmless (the dispatcher publishes before each run's first submission, and again after a restart).
/// </summary>
public interface IRunSpecPublisher
{
    /// <summary>Stores the spec; returns its location as the wrapper reads it (a path, or <c>s3://bucket/key</c>).</summary>
    /// <exception cref="Protocol.AwsConfigurationException">This publisher cannot write to that store.</exception>
    Task<string> PublishAsync(string store, string batchJob, string runId, string specJson, CancellationToken cancellation);
}

/// <summary>
/// Publishes to a store that is a folder (a shared file system, or tests); refuses <c>s3://</c> stores, which need the
/// S3 publisher of the results store.
/// </summary>
public sealed class FolderRunSpecPublisher : IRunSpecPublisher
{
    public async Task<string> PublishAsync(string store, string batchJob, string runId, string specJson, CancellationToken cancellation)
    {
        if (store.StartsWith("s3://", StringComparison.OrdinalIgnoreCase) || store.Contains("://", StringComparison.Ordinal) && !store.StartsWith("file://", StringComparison.Ordinal))
        {
            throw new Protocol.AwsConfigurationException($"no publisher for the results store {store}: this controller writes run specs only to folders");
        }

        var root = store.StartsWith("file://", StringComparison.Ordinal) ? new Uri(store).LocalPath : store;
        var path = Path.Combine(root, StoreLayout.SpecKey(batchJob, runId));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        await File.WriteAllTextAsync(temporary, specJson, cancellation).ConfigureAwait(false);
        File.Move(temporary, path, overwrite: true);
        return path;
    }
}
