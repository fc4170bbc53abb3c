using BatchRunner.Core.Store;

namespace BatchRunner.Aws.S3;

/// <summary>Opens the store a location names: S3 for <c>s3://</c>, else a local folder (given by the caller's factory).</summary>
public static class ResultsStores
{
    public static IResultsStore Open(string location, ResultsOptions options, Func<string, IResultsStore> localStore)
    {
        var uri = StoreUri.Parse(location);
        return uri.IsS3 ? S3ResultsStore.Create(options, uri) : localStore(uri.LocalPath!);
    }
}
