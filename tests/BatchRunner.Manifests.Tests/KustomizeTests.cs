using System.Diagnostics;
using System.Text.Json.Nodes;

namespace BatchRunner.Manifests.Tests;

/// <summary>`kubectl apply -k manifests/` installs the CRD, the RBAC and the controller, and no example.</summary>
public class KustomizeTests
{
    [Fact]
    public void Kustomize_build_includes_crd_rbac_and_controller()
    {
        var objects = Manifests.Load(Kubectl("kustomize", Manifests.Root));

        var kinds = objects.Select(o => $"{Manifests.Str(o["kind"])}/{Manifests.Str(o["metadata"]!["name"])}").Order(StringComparer.Ordinal);
        Assert.Equal(
            new[]
            {
                "ClusterRole/batchrunner-controller",
                "ClusterRoleBinding/batchrunner-controller",
                "CustomResourceDefinition/batchjobs.batchrunner.io",
                "CustomResourceDefinition/queues.batchrunner.io",
                "Deployment/batchrunner-controller",
                "Namespace/batchrunner-system",
                "PodDisruptionBudget/batchrunner-controller",
                "Role/batchrunner-controller-leader-election",
                "RoleBinding/batchrunner-controller-leader-election",
                "Service/batchrunner-controller-metrics",
                "ServiceAccount/batchrunner-controller",
            },
            kinds);

        // The build is the files as written (plus the part-of label): the other tests read the files themselves.
        var byFile = Manifests.Installable();
        Assert.Equal(byFile.Count, objects.Count);
        foreach (var built in objects)
        {
            var source = Manifests.Single(byFile, Manifests.Str(built["kind"])!, Manifests.Str(built["metadata"]!["name"])!);
            Assert.Equal("batchrunner", Manifests.Str(built["metadata"]!["labels"]?["app.kubernetes.io/part-of"]));
            var withoutLabels = (JsonObject)built.DeepClone();
            withoutLabels["metadata"]!.AsObject().Remove("labels");
            var sourceWithoutLabels = (JsonObject)source.DeepClone();
            sourceWithoutLabels["metadata"]!.AsObject().Remove("labels");
            Assert.True(JsonNode.DeepEquals(sourceWithoutLabels, withoutLabels), $"kustomize changed {Manifests.Str(built["kind"])}");
        }

        // Namespaced objects live in the controller's namespace; the CRD's own objects come first.
        var clusterScoped = new[] { "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding" };
        foreach (var o in objects.Where(o => !clusterScoped.Contains(Manifests.Str(o["kind"]))))
        {
            Assert.Equal(Manifests.ControllerNamespace, Manifests.Str(o["metadata"]!["namespace"]));
        }

        Assert.Equal("Namespace", Manifests.Str(objects[0]["kind"]));
        Assert.Equal("CustomResourceDefinition", Manifests.Str(objects[1]["kind"]));
    }

    [Fact]
    public void Every_manifest_outside_the_examples_is_in_the_kustomization()
    {
        var kustomization = Assert.Single(Manifests.Load(File.ReadAllText(Path.Combine(Manifests.Root, "kustomization.yaml"))));
        var listed = Manifests.Strings(kustomization["resources"]).Select(r => Path.GetFullPath(Path.Combine(Manifests.Root, r)));

        Assert.Equal(Manifests.InstallableFiles().Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(listed, f => f.Contains($"{Path.DirectorySeparatorChar}examples{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
    }

    private static string Kubectl(params string[] args)
    {
        var start = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("kubectl did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "kubectl kustomize did not finish in 2 minutes");
        Assert.True(process.ExitCode == 0, $"kubectl {string.Join(' ', args)} exited {process.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }
}
