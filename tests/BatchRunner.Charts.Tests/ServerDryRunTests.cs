using System.Diagnostics;
using BatchRunner.Kubernetes.Testing;

namespace BatchRunner.Charts.Tests;

/// <summary>Every test class of this assembly that needs a cluster shares one control plane.</summary>
[CollectionDefinition(ControlPlaneCollection.Name)]
public sealed class ControlPlaneCollectionDefinition : ICollectionFixture<ControlPlaneFixture>;

/// <summary>
/// The rendered chart, for every target, goes through the real Kubernetes 1.20 API server (tests/k8s) as a
/// server-side dry run: admission, defaulting and the server's validation of every object, with kubectl's
/// strict field validation (unknown or misspelled fields fail). The RBAC it grants is then applied for real and
/// asked about, verb by verb, as the controller's service account.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class ServerDryRunTests(ControlPlaneFixture fixture) : IAsyncLifetime
{
    private const string KubeVersion = "1.20.2";

    private ControlPlane Cluster => fixture.ControlPlane;

    public Task InitializeAsync() => ClusterSetup.EnsureAsync(Cluster);

    public Task DisposeAsync() => Task.CompletedTask;

    public static TheoryData<string, string> Targets() => new()
    {
        { "", "" },
        { "values-minikube.yaml", "" },
        { "values-eks.yaml", "" },
        { "values-eks.yaml", "metrics.serviceMonitor.enabled=true,replicaCount=3,podDisruptionBudget.minAvailable=2" },
    };

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_rendered_object_passes_a_server_side_dry_run(string valuesFile, string set)
    {
        string[] args = [.. Helm.ValuesArgs(valuesFile), "--kube-version", KubeVersion, "--include-crds", .. set.Length == 0 ? Array.Empty<string>() : ["--set", set]];
        var rendering = Helm.Render(args);
        var objects = rendering.Objects();

        var output = DryRun(rendering.Output, expectedExit: 0);

        // kubectl names each object it sent, "(server dry run)".
        foreach (var o in objects)
        {
            var name = Helm.Str(o["metadata"]!["name"]);
            Assert.Contains(output.Split('\n'), line => line.Contains($"/{name} ", StringComparison.Ordinal) && line.Contains("(server dry run)", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void The_dry_run_refuses_what_the_server_would_refuse()
    {
        // policy/v1 PodDisruptionBudgets came with 1.21: rendered for a newer cluster, 1.20 has no such kind.
        var newer = Helm.Render("--kube-version", "1.31.0");
        Assert.Contains("policy/v1", DryRun(newer.Output, expectedExit: 1), StringComparison.Ordinal);

        // An annotation key the API server's validation refuses (the schema of values cannot know it).
        var badAnnotation = Helm.Render("--kube-version", KubeVersion, "--set", "podAnnotations.not\\ a\\ key=x");
        var refusal = DryRun(badAnnotation.Output, expectedExit: 1);
        Assert.Contains("spec.template.annotations: Invalid value: \"not a key\"", refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void The_service_account_may_do_exactly_what_the_controller_needs()
    {
        var rendering = Helm.Render("--kube-version", KubeVersion, "--include-crds");
        var rbac = string.Join("\n---\n", rendering.Output.Split("\n---\n")
            .Where(doc => doc.Contains("kind: CustomResourceDefinition", StringComparison.Ordinal) || doc.Contains("kind: ServiceAccount", StringComparison.Ordinal) || doc.Contains("kind: ClusterRole", StringComparison.Ordinal)
                || doc.Contains("kind: Role", StringComparison.Ordinal)));
        var file = WriteTemp(rbac);
        Kubectl(0, "apply", "-f", file);

        var account = $"system:serviceaccount:{Helm.Namespace}:batchrunner-controller";
        string[][] allowed =
        [
            ["watch", "batchjobs.batchrunner.io", "default"], ["create", "batchjobs.batchrunner.io", "team-a"],
            ["patch", "batchjobs.batchrunner.io/status", "default"], ["update", "batchjobs.batchrunner.io/finalizers", "default"],
            ["create", "jobs.batch", "default"], ["delete", "jobs.batch", "team-a"], ["create", "configmaps", "default"], ["list", "configmaps", "team-a"],
            ["list", "pods", "default"], ["create", "events", "default"], ["create", "events.events.k8s.io", "default"],
            ["update", "leases.coordination.k8s.io", Helm.Namespace],
        ];
        string[][] refused =
        [
            ["get", "secrets", "default"], ["delete", "batchjobs.batchrunner.io", "default"], ["create", "pods", "default"],
            ["update", "configmaps", "default"], ["create", "deployments.apps", "default"], ["update", "leases.coordination.k8s.io", "default"],
            ["create", "clusterrolebindings.rbac.authorization.k8s.io", ""],
        ];
        foreach (var (verdict, cases) in new[] { (0, allowed), (1, refused) })
        {
            foreach (var c in cases)
            {
                var namespaceArgs = c[2].Length == 0 ? Array.Empty<string>() : ["-n", c[2]];
                // "resource/subresource" is asked with --subresource.
                var resource = c[1].Split('/');
                var subresourceArgs = resource.Length == 2 ? ["--subresource", resource[1]] : Array.Empty<string>();
                Kubectl(verdict, ["auth", "can-i", c[0], resource[0], .. subresourceArgs, "--as", account, .. namespaceArgs]);
            }
        }

        File.Delete(file);
    }

    private string DryRun(string manifests, int expectedExit)
    {
        var file = WriteTemp(manifests);
        try
        {
            return Kubectl(expectedExit, "apply", "--dry-run=server", "--validate=strict", "-f", file);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string WriteTemp(string text)
    {
        var file = Path.Combine(Path.GetTempPath(), $"batchrunner-chart-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(file, text);
        return file;
    }

    /// <summary>Runs kubectl as the admin; asserts its exit code; returns standard output and error together.</summary>
    private string Kubectl(int expectedExit, params string[] args)
    {
        var start = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("--kubeconfig");
        start.ArgumentList.Add(Cluster.AdminKubeconfigPath);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), $"kubectl {string.Join(' ', args)} did not finish");
        var text = output.Result + error.Result;
        Assert.True(process.ExitCode == expectedExit, $"kubectl {string.Join(' ', args)} exited {process.ExitCode}, expected {expectedExit}:\n{text}");
        return text;
    }
}

/// <summary>What the cluster tests share, made once per control plane: the release's namespace and a stand-in CRD.</summary>
internal static class ClusterSetup
{
    private static readonly SemaphoreSlim Once = new(1, 1);
    private static ControlPlane? done;

    public static async Task EnsureAsync(ControlPlane cluster)
    {
        await Once.WaitAsync();
        try
        {
            if (ReferenceEquals(done, cluster))
            {
                return;
            }

            await cluster.CreateNamespaceAsync(Helm.Namespace);
            // A stand-in for the Prometheus Operator's ServiceMonitor CRD (not installable here), with a structural
            // schema of the fields the chart writes, so that a ServiceMonitor is checked too.
            var start = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { "--kubeconfig", cluster.AdminKubeconfigPath, "apply", "-f", Path.Combine(AppContext.BaseDirectory, "TestCharts", "servicemonitor-crd.yaml") })
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEndAsync();
            await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, $"kubectl apply servicemonitor-crd.yaml: {await error}");
            done = cluster;
        }
        finally
        {
            Once.Release();
        }
    }
}
