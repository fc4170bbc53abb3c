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
}
