namespace BatchRunner.Cli;

/// <summary>Where the local store lives: <c>--store</c>, else <c>BATCHRUNNER_STORE</c>, else <c>./.batchrunner</c>.</summary>
public static class StoreLocation
{
    public const string EnvironmentVariable = "BATCHRUNNER_STORE";
    public const string DefaultFolder = ".batchrunner";

    public static string Resolve(string? option)
    {
        var chosen = option ?? Environment.GetEnvironmentVariable(EnvironmentVariable);
        return Path.GetFullPath(string.IsNullOrEmpty(chosen) ? DefaultFolder : chosen);
    }
}
