using System.Diagnostics;
using BatchRunner.Kubernetes.Testing;
using k8s;
using Xunit;

namespace BatchRunner.Operator.Tests;

[CollectionDefinition(ControlPlaneCollection.Name)]
public sealed class OperatorCollection : ICollectionFixture<OperatorFixture>;

/// <summary>
/// One control plane for the suite, with BatchRunner installed the way a user installs it (kubectl apply of the
/// CRD, RBAC and namespace manifests) and a kubeconfig for the controller's own ServiceAccount.
/// </summary>
public sealed class OperatorFixture : IAsyncLifetime
{
    public const string SystemNamespace = "batchrunner-system";
    public const string ServiceAccount = "batchrunner-controller";

    private ControlPlane? _controlPlane;

    public ControlPlane ControlPlane => _controlPlane ?? throw new InvalidOperationException("not started");

    public IKubernetes Admin => ControlPlane.AdminClient;

    /// <summary>Authenticates as the controller's ServiceAccount: it can do what the ClusterRole grants, nothing more.</summary>
    public string ControllerKubeconfig { get; private set; } = "";

    public static string RepoRoot { get; } = FindRepoRoot();

    public async Task InitializeAsync()
    {
        _controlPlane = await ControlPlane.StartAsync();
        await KubectlAsync("apply", "-f", "manifests/controller/namespace.yaml", "-f", "manifests/crds/", "-f", "manifests/rbac/");
        await KubectlAsync("wait", "--for=condition=Established", "--timeout=60s", "crd/batchjobs.batchrunner.io", "crd/queues.batchrunner.io");
        ControllerKubeconfig = await ControlPlane.CreateServiceAccountKubeconfigAsync(SystemNamespace, ServiceAccount);
    }

    public async Task DisposeAsync()
    {
        if (_controlPlane is not null)
        {
            await _controlPlane.DisposeAsync();
        }
    }

    /// <summary>Runs kubectl as the admin from the repository root; throws with its output when it fails.</summary>
    /// <summary>Runs <c>batchrunner</c> in this process against the control plane (kubectl's door), asserting it succeeded; its output.</summary>
    public async Task<string> CliAsync(params string[] args)
    {
        var before = Environment.GetEnvironmentVariable("KUBECONFIG");
        Environment.SetEnvironmentVariable("KUBECONFIG", ControlPlane.AdminKubeconfigPath);
        try
        {
            using var stdout = new StringWriter();
            using var stderr = new StringWriter();
            var code = await BatchRunner.Cli.CliApplication.RunAsync(args, stdout, stderr);
            Xunit.Assert.True(code == 0, $"batchrunner {string.Join(' ', args)} exited {code}: {stderr}");
            return stdout.ToString();
        }
        finally
        {
            Environment.SetEnvironmentVariable("KUBECONFIG", before);
        }
    }

    public async Task<string> KubectlAsync(params string[] args)
    {
        var (exitCode, output) = await TryKubectlAsync(args);
        return exitCode == 0 ? output : throw new InvalidOperationException($"kubectl {string.Join(' ', args)} exited {exitCode}:\n{output}");
    }

    public async Task<(int ExitCode, string Output)> TryKubectlAsync(params string[] args)
    {
        var start = new ProcessStartInfo("kubectl") { WorkingDirectory = RepoRoot, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("--kubeconfig");
        start.ArgumentList.Add(ControlPlane.AdminKubeconfigPath);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Applies a YAML document with kubectl, as a user would.</summary>
    public async Task ApplyAsync(string yaml)
    {
        var file = Path.Combine(ControlPlane.Directory, $"apply-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, yaml);
        await KubectlAsync("apply", "-f", file);
    }

    private static string FindRepoRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "BatchRunner.sln")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException("BatchRunner.sln not found above " + AppContext.BaseDirectory);
    }
}
