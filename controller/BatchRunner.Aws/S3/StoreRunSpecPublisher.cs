using System.Text;
using BatchRunner.Aws.Batch;
using BatchRunner.Core.Store;

namespace BatchRunner.Aws.S3;

/// <summary>
/// Publishes a run's spec into its results store, S3 or a folder alike, at <see cref="StoreLayout.SpecKey"/>, and
/// answers with the location the results wrapper reads (<c>s3://bucket/key</c>, or a path).
/// </summary>
public sealed class StoreRunSpecPublisher(ResultsOptions options, Func<string, IResultsStore> localStore) : IRunSpecPublisher
{
    public async Task<string> PublishAsync(string store, string batchJob, string runId, string specJson, CancellationToken cancellation)
    {
        StoreUri uri;
        try
        {
            uri = StoreUri.Parse(store);
        }
        catch (FormatException e)
        {
            throw new Protocol.AwsConfigurationException($"the results store {store} is not usable: {e.Message}");
        }

        var key = StoreLayout.SpecKey(batchJob, runId);
        var results = ResultsStores.Open(store, options, localStore);
        try
        {
            await results.PutBytesAsync(key, Encoding.UTF8.GetBytes(specJson), cancellation).ConfigureAwait(false);
        }
        finally
        {
            (results as IDisposable)?.Dispose();
        }

        return uri.IsS3 ? $"{uri}/{key}" : Path.Combine(uri.LocalPath!, key);
    }
}
