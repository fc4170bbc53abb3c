using System.Globalization;

namespace BatchRunner.Benchmarks;

/// <param name="Cli">The CLI measured: the native executable (./batchrunner's build) or a .dll run with dotnet.</param>
/// <param name="JitDll">The JIT build of the same sources, measured beside it for reference.</param>
internal sealed record BenchOptions(string Mode, string RepoRoot, string Cli, string JitDll, int Pairs, int Count, int Indexes)
{
    public static BenchOptions? Parse(string[] args)
    {
        var mode = "all";
        string? repo = null, cli = null;
        int pairs = 5, count = 2000, indexes = 100_000;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "all" or "dispatch" or "memory" or "first" when i == 0:
                        mode = args[i];
                        break;
                    case "--repo":
                        repo = Value();
                        break;
                    case "--cli":
                        cli = Value();
                        break;
                    case "--pairs":
                        pairs = int.Parse(Value(), CultureInfo.InvariantCulture);
                        break;
                    case "--count":
                        count = int.Parse(Value(), CultureInfo.InvariantCulture);
                        break;
                    case "--indexes":
                        indexes = int.Parse(Value(), CultureInfo.InvariantCulture);
                        break;
                    default:
                        return null;
                }
            }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
            {
                return null;
            }
        }

        if (pairs < 1 || count < 1 || indexes < 1)
        {
            return null;
        }

        repo = Path.GetFullPath(repo ?? FindRepoRoot());
        cli = Path.GetFullPath(cli ?? Path.Combine(repo, "controller/BatchRunner.Cli/bin/native/batchrunner"));
        var jit = Path.Combine(repo, "controller/BatchRunner.Cli/bin/Release/net10.0/batchrunner.dll");
        return new BenchOptions(mode, repo, cli, jit, pairs, count, indexes);
    }

    /// <summary>The checkout this program was built in: the first folder above it holding BatchRunner.sln.</summary>
    private static string FindRepoRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "BatchRunner.sln")))
            {
                return folder.FullName;
            }
        }

        return Environment.CurrentDirectory;
    }
}
