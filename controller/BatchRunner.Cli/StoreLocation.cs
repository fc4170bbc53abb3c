namespace BatchRunner.Cli;

/// <summary>Where the local store lives: <c>--store</c>, else <c>BATCHRUNNER_STORE</c>, else <c>./.batchrunner</c>.</summary>
public static class StoreLocation
{
    public const string EnvironmentVariable = "BATCHRUNNER_STORE";
    public const string DefaultFolder = ".batchrunner";

    public static string Resolve(string? option)
    {
        var chosen = option ?? Environment.GetEnvironmentVariable(EnvironmentVariable);
        var path = Path.GetFullPath(string.IsNullOrEmpty(chosen) ? DefaultFolder : chosen);
        return File.Exists(path)
            ? throw new IOException($"the store {path} is a file, not a folder (--store or ${EnvironmentVariable}); give a folder")
            : path;
    }

    /// <summary>
    /// A store the cluster backends wrote, as <c>--results</c> names it (s3://bucket/prefix or a folder), with S3's
    /// settings from <c>BatchRunner__Results__*</c>; a location that is neither throws <see cref="FormatException"/>.
    /// </summary>
    public static BatchRunner.Core.Store.IResultsStore OpenResults(string location)
    {
        var fromEnvironment = BatchRunner.Aws.S3.ResultsOptions.FromEnvironment(Environment.GetEnvironmentVariable);
        var options = new BatchRunner.Aws.S3.ResultsOptions
        {
            Uri = location, Region = fromEnvironment.Region, EndpointUrl = fromEnvironment.EndpointUrl, ForcePathStyle = fromEnvironment.ForcePathStyle,
        };
        return BatchRunner.Aws.S3.ResultsStores.Open(location, options, path => new BatchRunner.Store.LocalResultsStore(path));
    }
}
