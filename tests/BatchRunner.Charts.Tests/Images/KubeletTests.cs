using System.Net;
using System.Text.Json.Nodes;
using BatchRunner.Core.Store;
using BatchRunner.Kubernetes.Testing;
using BatchRunner.Results.Tests.Support;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace BatchRunner.Charts.Tests.Images;

/// <summary>
/// The product's own Job pods in real containers: a real kubelet (built from the test control plane's Debian source)
/// with containerd and runc runs the pod the controller made for a BatchJob — its init container installing the
/// wrapper from the controller image, the workload image's simulation behind it writing its output and ledger row to
/// fauxqs's S3 — and the controller then compacts the run. Kubernetes 1.20 gives pods no completion index, so the
/// BatchJob is one index, which needs none.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class KubeletTests(ControlPlaneFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _namespace = "kubelet-" + Guid.NewGuid().ToString("N")[..8];
    private RealKubelet? _kubelet;
    private IRunningController? _controller;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_controller is not null)
        {
            output.WriteLine("--- controller ---\n" + _controller.Log);
            await _controller.DisposeAsync();
        }

        if (_kubelet is not null)
        {
            output.WriteLine("--- containerd and kubelet ---\n" + _kubelet.Log);
            await _kubelet.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_real_kubelet_runs_the_controller_s_Job_pod_in_containers_its_results_reach_S3_and_the_run_is_compacted()
    {
        await BuiltImages.EnsureAsync();
        var cluster = fixture.ControlPlane;
        await cluster.KubectlAsync(Helm.RepoRoot, "apply", "-f", "manifests/crds/");
        await cluster.CreateNamespaceAsync(_namespace);
        var (_, uri) = await S3Server.Shared.NewStoreAsync();
        var credentials = S3Server.Shared.Environment();
        await cluster.AdminClient.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "store-credentials" },
            StringData = new Dictionary<string, string> { ["AWS_ACCESS_KEY_ID"] = credentials["AWS_ACCESS_KEY_ID"], ["AWS_SECRET_ACCESS_KEY"] = credentials["AWS_SECRET_ACCESS_KEY"] },
        }, _namespace);

        _kubelet = await RealKubelet.StartAsync(cluster, _namespace, BuiltImages.Controller, BuiltImages.MmcQueue);
        // Pods reach fauxqs (on the host's loopback) at the bridge's address; so does the controller.
        await using var relay = new TcpRelay(IPAddress.Parse(RealKubelet.Gateway), new IPEndPoint(IPAddress.Loopback, new Uri(S3Server.Shared.Url).Port));
        var endpoint = $"http://{RealKubelet.Gateway}:{relay.Port}";
        _controller = ChartedControllerTests.StartBuilt(new Dictionary<string, string>(credentials)
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["BatchRunner__Kubernetes__Kubeconfig"] = cluster.AdminKubeconfigPath,
            ["BatchRunner__Kubernetes__ExecImage"] = BuiltImages.Controller,
            ["BatchRunner__LeaderElection__Identity"] = "kubelet-test",
            ["BatchRunner__LeaderElection__LeaseName"] = "batchrunner-controller",
            ["BatchRunner__LeaderElection__Namespace"] = _namespace,
            ["BatchRunner__Results__Uri"] = uri,
            ["BatchRunner__Results__EndpointUrl"] = endpoint,
            ["BatchRunner__Results__CredentialsSecret"] = "store-credentials",
        });

        var manifest = Path.Combine(Path.GetTempPath(), $"{_namespace}.json");
        await File.WriteAllTextAsync(manifest, $$"""
            {"apiVersion": "batchrunner.io/v1alpha1", "kind": "BatchJob",
             "metadata": {"name": "on-a-node", "namespace": "{{_namespace}}"},
             "spec": {"image": "{{BuiltImages.MmcQueue}}", "command": ["dotnet", "workloads/bin/mmc-queue/mmc-queue.dll"], "backend": "kubernetes",
                      "resources": {"cpu": "250m", "memory": "256Mi"},
                      "sweep": {"list": [{"arrival_rate": 0.5, "service_rate": 1.0, "servers": 1}]} } }
            """);
        await cluster.KubectlAsync(Helm.RepoRoot, "apply", "-f", manifest);
        File.Delete(manifest);

        // The BatchJob succeeds because its pod did, in containers containerd ran.
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(cluster.AdminClient)) is "Succeeded" or "Failed", TimeSpan.FromMinutes(4),
            $"BatchJob {_namespace}/on-a-node finished (the kubelet's log follows the test)");
        var pod = Assert.Single((await cluster.AdminClient.CoreV1.ListNamespacedPodAsync(_namespace)).Items);
        Assert.True(Phase(await BatchJobAsync(cluster.AdminClient)) == "Succeeded", $"the BatchJob failed; its pod: {KubernetesJson.Serialize(pod.Status)}");
        Assert.Equal(_kubelet.NodeName, pod.Spec.NodeName);
        var init = Assert.Single(pod.Status.InitContainerStatuses);
        Assert.Equal((0, true), (init.State.Terminated.ExitCode, init.ContainerID.StartsWith("containerd://", StringComparison.Ordinal)));
        var workload = Assert.Single(pod.Status.ContainerStatuses);
        Assert.Equal((0, true), (workload.State.Terminated.ExitCode, workload.ContainerID.StartsWith("containerd://", StringComparison.Ordinal)));

        // Its ledger row and output are in the store, and the controller compacted the run.
        var (name, runId) = ("on-a-node", pod.Metadata.Labels["batchrunner.io/run"]);
        var location = StoreUri.Parse(uri);
        using var client = S3Server.Shared.Client();
        string Key(string key) => $"{location.Prefix.Trim('/')}/{key}";
        using (var ledger = await client.GetObjectAsync(location.Bucket, Key(StoreLayout.LedgerKey(name, runId, 0, 1))))
        {
            var row = (await JsonNode.ParseAsync(ledger.ResponseStream))!;
            Assert.Equal(("succeeded", "kubernetes"), ((string?)row["status"], (string?)row["backend"]));
            Assert.True((int?)row["output_rows"] > 0, row.ToJsonString());
        }

        await Eventually.TrueAsync(async () => (await client.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request
        {
            BucketName = location.Bucket, Prefix = Key(StoreLayout.CompactedPrefix(name, runId, "results")),
        })).S3Objects?.Count > 0, TimeSpan.FromMinutes(2), "the run's results compacted");
    }

    private async Task<JsonObject> BatchJobAsync(IKubernetes client) =>
        JsonNode.Parse(((System.Text.Json.JsonElement)await client.CustomObjects.GetNamespacedCustomObjectAsync("batchrunner.io", "v1alpha1", _namespace, "batchjobs", "on-a-node")).GetRawText())!.AsObject();

    private static string? Phase(JsonObject batchJob) => (string?)batchJob["status"]?["phase"];
}
