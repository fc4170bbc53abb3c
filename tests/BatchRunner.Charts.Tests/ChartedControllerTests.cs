using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using BatchRunner.Kubernetes.Testing;
using k8s;
using k8s.Models;

namespace BatchRunner.Charts.Tests;

/// <summary>A controller a test started, whichever way: its log, and stopping it.</summary>
internal interface IRunningController : IAsyncDisposable
{
    string Log { get; }
}

/// <summary>
/// The controller as the chart configures it: the built controller runs with exactly the environment of the
/// rendered Deployment (the pod's downward-API fields filled in as the kubelet would), from its own folder so
/// its appsettings.json applies as in the image, against the 1.20 control plane as the chart's ServiceAccount
/// with the chart's RBAC applied. It must listen where the chart's probes look, lead, and turn a BatchJob into a
/// Job: the chart's configuration and permissions are enough to run. Then the same with the controller image
/// itself, run by podman as the chart's pod runs it (its user, a read-only root filesystem, /tmp a volume).
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class ChartedControllerTests(ControlPlaneFixture fixture)
{
    private const string PodName = "batchrunner-controller-5d9c7b-x2x4q";
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(3) };

    [Fact]
    public Task The_controller_configured_by_the_chart_serves_its_probes_leads_and_dispatches() =>
        RunAsChartedAsync(PodName, "chart-sweeps", (environment, _) => Task.FromResult<IRunningController>(Start(environment)));

    [Fact]
    public async Task The_controller_image_run_as_the_chart_runs_it_serves_its_probes_leads_and_dispatches()
    {
        await Images.BuiltImages.EnsureAsync();
        await RunAsChartedAsync(PodName + "-image", "chart-sweeps-image", Images.ControllerContainer.StartAsync);
    }

    /// <summary>One run of the controller as the chart configures it, started by <paramref name="start"/>.</summary>
    private async Task RunAsChartedAsync(string podName, string sweeps, Func<Dictionary<string, string>, JsonNode, Task<IRunningController>> start)
    {
        var cluster = fixture.ControlPlane;
        await ClusterSetup.EnsureAsync(cluster);
        var port = FreePort();
        var rendering = Helm.Render("--kube-version", "1.20.2", "--include-crds", "--set", $"port={port}");
        var objects = rendering.Objects();

        // The chart's CRD, ServiceAccount and RBAC, for real (idempotent: other tests of the collection apply them too).
        await ApplyAsync(cluster, objects.Where(o => Helm.Str(o["kind"]) is "CustomResourceDefinition" or "ServiceAccount" or "ClusterRole"
            or "ClusterRoleBinding" or "Role" or "RoleBinding"));
        var kubeconfig = await cluster.CreateServiceAccountKubeconfigAsync(Helm.Namespace, "batchrunner-controller");

        var deployment = Helm.Single(objects, "Deployment", "batchrunner-controller");
        var container = deployment["spec"]!["template"]!["spec"]!["containers"]![0]!;
        var probe = container["readinessProbe"]!["httpGet"]!;
        Assert.Equal("http", Helm.Str(probe["port"]));
        Assert.Equal((long)port, container["ports"]![0]!["containerPort"]!.GetValue<long>());

        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in container["env"]!.AsArray())
        {
            var name = Helm.Str(variable!["name"])!;
            environment[name] = Helm.Str(variable["value"]) ?? Helm.Str(variable["valueFrom"]!["fieldRef"]!["fieldPath"]) switch
            {
                "metadata.namespace" => Helm.Namespace,
                "metadata.name" => podName,
                var other => throw new InvalidOperationException($"{name}: the test does not fill {other}"),
            };
        }

        // In a pod the in-cluster service account applies; here its token comes through a kubeconfig.
        environment["BatchRunner__Kubernetes__Kubeconfig"] = kubeconfig;

        await using var controller = await start(environment, container);
        try
        {
            // The readiness probe's path on the chart's port answers (a standby is ready too).
            await Eventually.TrueAsync(async () => (await Http.GetAsync($"http://127.0.0.1:{port}{Helm.Str(probe["path"])}")).StatusCode == HttpStatusCode.OK,
                TimeSpan.FromSeconds(60), "the controller's /readyz on the chart's port");
            var liveness = await Http.GetAsync($"http://127.0.0.1:{port}{Helm.Str(container["livenessProbe"]!["httpGet"]!["path"])}");
            Assert.Equal(HttpStatusCode.OK, liveness.StatusCode);

            // It leads through the Lease the chart names, in the release's namespace, as the pod it was named.
            await Eventually.TrueAsync(async () =>
                (await cluster.AdminClient.CoordinationV1.ReadNamespacedLeaseAsync("batchrunner-controller", Helm.Namespace)).Spec.HolderIdentity == podName,
                TimeSpan.FromSeconds(60), $"Lease {Helm.Namespace}/batchrunner-controller held by {podName}");

            // A BatchJob becomes a Job: the ClusterRole lets it read BatchJobs and create Jobs and ConfigMaps anywhere.
            await cluster.CreateNamespaceAsync(sweeps);
            await ApplyAsync(cluster, [JsonNode.Parse($$"""
                {"apiVersion": "batchrunner.io/v1alpha1", "kind": "BatchJob",
                 "metadata": {"name": "charted", "namespace": "{{sweeps}}"},
                 "spec": {"image": "batchrunner/mmc-queue:dev", "command": ["true"], "backend": "kubernetes",
                          "sweep": {"grid": {"x": [1, 2, 3]} }, "parallelism": 2} }
                """)!.AsObject()]);
            await Eventually.TrueAsync(async () => (await cluster.AdminClient.BatchV1.ListNamespacedJobAsync(sweeps)).Items.Any(j => j.Name() == "charted"),
                TimeSpan.FromSeconds(60), $"the Job of BatchJob {sweeps}/charted");
            var job = await cluster.AdminClient.BatchV1.ReadNamespacedJobAsync("charted", sweeps);
            Assert.Equal(3, job.Spec.Completions);

            // The chart sets no QPS and the image's appsettings.json none either: the client's limit is the API
            // server's to share once it shows API Priority and Fairness (1.20 serves it), not a fixed 50 calls a second.
            Assert.Null(Helm.Str(container["env"]!.AsArray().FirstOrDefault(v => Helm.Str(v!["name"]) == "BatchRunner__Kubernetes__Qps")?["value"]));
            await Eventually.TrueAsync(() => Task.FromResult(controller.Log.Contains("no client-side QPS limit", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(30), "the controller lifting its client-side QPS limit");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"{e.Message}\ncontroller log:\n{controller.Log}", e);
        }
    }

    private static async Task ApplyAsync(ControlPlane cluster, IEnumerable<JsonObject> objects)
    {
        var file = Path.Combine(Path.GetTempPath(), $"batchrunner-charted-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, new JsonObject { ["apiVersion"] = "v1", ["kind"] = "List", ["items"] = new JsonArray(objects.Select(o => (JsonNode)o.DeepClone()).ToArray()) }.ToJsonString());
        try
        {
            var start = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { "--kubeconfig", cluster.AdminKubeconfigPath, "apply", "-f", file })
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEndAsync();
            await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, $"kubectl apply: {await error}");
        }
        finally
        {
            File.Delete(file);
        }

        // A CRD serves its kind once Established.
        await Eventually.TrueAsync(async () =>
        {
            var crd = await cluster.AdminClient.ApiextensionsV1.ReadCustomResourceDefinitionAsync("batchjobs.batchrunner.io");
            return crd.Status?.Conditions?.Any(c => c.Type == "Established" && c.Status == "True") == true;
        }, TimeSpan.FromSeconds(30), "the BatchJob CRD established");
    }

    /// <summary>The built controller (Release, else Debug) with exactly this environment, from its own folder.</summary>
    internal static IRunningController StartBuilt(Dictionary<string, string> environment) => Start(environment);

    private static Controller Start(Dictionary<string, string> environment)
    {
        var dll = new[] { "Release", "Debug" }
            .Select(c => Path.Combine(Helm.RepoRoot, "controller", "BatchRunner.Controller", "bin", c, "net10.0", "batchrunner-controller.dll"))
            .Where(File.Exists).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault()
            ?? throw new InvalidOperationException("batchrunner-controller.dll is not built");
        // Its own folder is the content root, so appsettings.json (whose Urls is loopback) applies as in the image.
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = Path.GetDirectoryName(dll)!, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("BatchRunner__", StringComparison.Ordinal) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        return new Controller(Process.Start(start)!);
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed class Controller : IRunningController
    {
        private readonly Process process;
        private readonly ConcurrentQueue<string> log = new();

        public Controller(Process process)
        {
            this.process = process;
            process.OutputDataReceived += (_, e) => Keep(e.Data);
            process.ErrorDataReceived += (_, e) => Keep(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public string Log => string.Join('\n', log);

        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }

        private void Keep(string? line)
        {
            if (line is not null)
            {
                log.Enqueue(line);
            }
        }
    }
}
