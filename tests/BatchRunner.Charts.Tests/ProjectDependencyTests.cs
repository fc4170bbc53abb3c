namespace BatchRunner.Charts.Tests;

/// <summary>Which project may depend on which: backends meet only at the seam, and the CLI links no cluster client.</summary>
public sealed class ProjectDependencyTests
{
    private static readonly string[] Backends =
    [
        "controller/BatchRunner.Local/BatchRunner.Local.csproj",
        "controller/BatchRunner.Kubernetes/BatchRunner.Kubernetes.csproj",
        "controller/BatchRunner.Aws/BatchRunner.Aws.csproj",
    ];

    public static TheoryData<string> BackendProjects() => new(Backends);

    [Theory]
    [MemberData(nameof(BackendProjects))]
    public void No_backend_references_another(string backend)
    {
        var others = Backends.Where(b => b != backend).Select(b => Path.GetDirectoryName(b)!.Replace('\\', '/')).ToList();

        var reached = ProjectGraph.ReferencedFolders(backend);

        Assert.Empty(reached.Intersect(others));
    }

    /// <summary>Libraries log through Microsoft.Extensions.Logging; only the hosts (controller, CLI, wrapper) choose Serilog.</summary>
    [Theory]
    [InlineData("controller/BatchRunner.Core/BatchRunner.Core.csproj")]
    [InlineData("controller/BatchRunner.Backends/BatchRunner.Backends.csproj")]
    [InlineData("controller/BatchRunner.Local/BatchRunner.Local.csproj")]
    [InlineData("controller/BatchRunner.Kubernetes/BatchRunner.Kubernetes.csproj")]
    [InlineData("controller/BatchRunner.Aws/BatchRunner.Aws.csproj")]
    public void A_library_logs_through_ilogger_and_never_references_serilog(string library)
    {
        var packages = ProjectGraph.DirectPackages(library).ToList();

        Assert.DoesNotContain(packages, p => p.StartsWith("Serilog", StringComparison.Ordinal));
        var sources = Directory.EnumerateFiles(Path.Combine(Helm.RepoRoot, Path.GetDirectoryName(library)!), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal));
        Assert.DoesNotContain(sources, f => File.ReadAllText(f).Contains("Serilog", StringComparison.Ordinal));
    }

    /// <summary>The results wrapper runs in every container: no database engine rides along, and nothing is stripped at publish to make it so.</summary>
    [Fact]
    public void The_results_wrapper_carries_neither_duckdb_nor_sqlite()
    {
        const string exec = "controller/BatchRunner.Exec/BatchRunner.Exec.csproj";
        var packages = ProjectGraph.ReferencedFolders(exec)
            .SelectMany(folder => Directory.EnumerateFiles(Path.Combine(Helm.RepoRoot, folder), "*.csproj"))
            .SelectMany(project => ProjectGraph.DirectPackages(Path.GetRelativePath(Helm.RepoRoot, project)))
            .ToList();

        Assert.Contains("AWSSDK.S3", packages);
        Assert.DoesNotContain(packages, p => p.Contains("DuckDB", StringComparison.OrdinalIgnoreCase) || p.Contains("Sqlite", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain("ResolvedFileToPublish Remove", File.ReadAllText(Path.Combine(Helm.RepoRoot, exec)), StringComparison.Ordinal);
    }

    [Fact]
    public void The_seam_references_core_only() =>
        Assert.Equal(["controller/BatchRunner.Core/BatchRunner.Core.csproj"], ProjectGraph.DirectReferences("controller/BatchRunner.Backends/BatchRunner.Backends.csproj"));

    [Theory]
    [InlineData("controller/BatchRunner.Cli/BatchRunner.Cli.csproj")]
    [InlineData("controller/BatchRunner.Exec/BatchRunner.Exec.csproj")]
    public void The_native_cli_and_the_wrapper_do_not_reach_the_kubernetes_backend(string project) =>
        Assert.DoesNotContain("controller/BatchRunner.Kubernetes", ProjectGraph.ReferencedFolders(project));
}
