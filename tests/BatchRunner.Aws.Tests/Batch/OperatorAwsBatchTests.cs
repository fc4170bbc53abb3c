using System.Diagnostics;
using System.Text.Json;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Backends;
using BatchRunner.Controller.Hosting;
using BatchRunner.Kubernetes;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Testing;
using BatchRunner.Kubernetes.Status;
using k8s;
using Microsoft.Extensions.Configuration;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>
/// A Kubernetes 1.20 control plane with BatchRunner's CRD and RBAC applied as a user applies them, and the hosted
/// controller (as its ServiceAccount) with the AWS Batch backend on, against the stub Batch endpoint.
/// </summary>
public sealed class OperatorAwsBatchFixture : IAsyncLifetime
{
    private ControlPlane? _controlPlane;

    public ControlPlane ControlPlane => _controlPlane ?? throw new InvalidOperationException("not started");

    public string ControllerKubeconfig { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _controlPlane = await ControlPlane.StartAsync();
        await KubectlAsync("apply", "-f", "manifests/controller/namespace.yaml", "-f", "manifests/crds/", "-f", "manifests/rbac/");
        await KubectlAsync("wait", "--for=condition=Established", "--timeout=60s", "crd/batchjobs.batchrunner.io");
        ControllerKubeconfig = await ControlPlane.CreateServiceAccountKubeconfigAsync("batchrunner-system", "batchrunner-controller");
    }

    public async Task<string> KubectlAsync(params string[] args)
    {
        var start = new ProcessStartInfo("kubectl") { WorkingDirectory = Protocol.Botocore.RepoRoot(), RedirectStandardOutput = true, RedirectStandardError = true };
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
        return process.ExitCode == 0 ? await stdout : throw new InvalidOperationException($"kubectl {string.Join(' ', args)}: {await stdout}{await stderr}");
    }

    public async Task DisposeAsync()
    {
        if (_controlPlane is not null)
        {
            await _controlPlane.DisposeAsync();
        }
    }
}

public sealed class OperatorAwsBatchTests(OperatorAwsBatchFixture fixture) : IClassFixture<OperatorAwsBatchFixture>, IAsyncLifetime
{
    private BatchRig _rig = null!;
    private WebApplication _controller = null!;
    private readonly TeleportBackend _teleport = new();

    private IKubernetes Admin => fixture.ControlPlane.AdminClient;

    public async Task InitializeAsync()
    {
        _rig = await BatchRig.StartAsync();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["BatchRunner:Kubernetes:Kubeconfig"] = fixture.ControllerKubeconfig,
            ["BatchRunner:LeaderElection:Enabled"] = "false",
            ["BatchRunner:AwsBatch:Enabled"] = "true",
            ["BatchRunner:AwsBatch:JobQueue"] = BatchRig.Queue,
            ["BatchRunner:AwsBatch:ExecutionRoleArn"] = BatchRig.ExecutionRole,
            ["BatchRunner:AwsBatch:Region"] = "us-east-1",
            ["BatchRunner:AwsBatch:EndpointUrl"] = _rig.Server.Url.ToString(),
            ["BatchRunner:AwsBatch:PollSeconds"] = "0.2",
            ["BatchRunner:AwsBatch:MaxPollSeconds"] = "0.5",
            ["BatchRunner:Results:Uri"] = _rig.Store,
        });
        builder.AddBatchRunnerController();
        // A fourth backend, registered as any backend is: one registration, no product edit.
        builder.Services.AddSingleton<IBatchBackend>(_teleport);
        _controller = builder.Build();
        _controller.MapControllerEndpoints();
        await _controller.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _controller.StopAsync();
        await _controller.DisposeAsync();
        await _rig.DisposeAsync();
    }

    [Fact]
    public async Task An_applied_aws_batch_job_runs_as_an_array_and_its_status_names_the_failed_index()
    {
        await fixture.ControlPlane.CreateNamespaceAsync("aws-run");
        _rig.Server.ExitCode = (index, _) => index == 2 ? 7 : 0;

        await ApplyAsync("aws-run", "sweep", "completions: 4\n  parallelism: 4");
        var status = await WaitForAsync("aws-run", "sweep", s => s.IsTerminal);

        Assert.Equal((Core.Runs.RunPhase.Failed, 4, 3, 1, "2"), (status.Phase, status.Total, status.Succeeded, status.Failed, status.FailedIndexes));
        var failed = status.Find(Conditions.Failed)!;
        Assert.Equal("IndexesFailed", failed.Reason);
        Assert.Contains("index 2: Essential container in task exited (exit code 7)", failed.Message, StringComparison.Ordinal);
        Assert.Equal("True", status.Find(Conditions.Dispatched)!.Status);
        Assert.Equal(4, Assert.Single(_rig.Server.Jobs).Size);
        var kept = status.BackendState!.Value;
        Assert.Equal((2, 7), (kept.GetProperty("failures")[0].GetProperty("index").GetInt32(), kept.GetProperty("failures")[0].GetProperty("exitCode").GetInt32()));
    }

    [Fact]
    public async Task Deleting_a_running_aws_batch_job_terminates_its_array_and_releases_it()
    {
        await fixture.ControlPlane.CreateNamespaceAsync("aws-delete");
        _rig.Server.AdvanceOnDescribe = false;

        await ApplyAsync("aws-delete", "doomed", "completions: 3\n  parallelism: 3");
        var running = await WaitForAsync("aws-delete", "doomed", s => s.BackendState?.TryGetProperty("arrays", out var arrays) == true && arrays.GetArrayLength() == 1);
        Assert.StartsWith("doomed-r", running.JobName, StringComparison.Ordinal);

        await fixture.KubectlAsync("delete", "batchjob", "doomed", "-n", "aws-delete", "--wait=true", "--timeout=60s");

        // Terminated, never merely cancelled (a running child ignores CancelJob). A deletion reconciled twice (the
        // finalizer's removal can meet a conflict) terminates again, which AWS Batch accepts: level-based, not counted.
        var stoppedBy = Assert.Single(_rig.Server.Jobs).StoppedBy;
        Assert.NotEmpty(stoppedBy);
        Assert.All(stoppedBy, call => Assert.Equal("TerminateJob", call));
    }

    [Fact]
    public async Task A_backend_registered_with_the_controller_runs_an_applied_batchjob_through_the_same_reconcile()
    {
        await fixture.ControlPlane.CreateNamespaceAsync("teleport");

        await ApplyAsync("teleport", "beamed", "completions: 5\n  parallelism: 5", backend: "teleport");
        await ApplyAsync("teleport", "lossy", "completions: 4\n  parallelism: 4\n  env: [{name: FAIL, value: \"1,3\"}]", backend: "teleport");
        var beamed = await WaitForAsync("teleport", "beamed", s => s.IsTerminal);
        var lossy = await WaitForAsync("teleport", "lossy", s => s.IsTerminal);

        Assert.Equal((Core.Runs.RunPhase.Succeeded, 5, 5, 0), (beamed.Phase, beamed.Total, beamed.Succeeded, beamed.Failed));
        Assert.Equal($"tp-{beamed.RunId}", beamed.JobName);
        Assert.Equal(("True", "Teleported"), (beamed.Find(Conditions.Dispatched)!.Status, beamed.Find(Conditions.Dispatched)!.Reason));
        // The backend's own state went into the neutral slot, and was handed back on the next reconcile.
        Assert.Equal(5, beamed.BackendState!.Value.GetProperty("submitted").GetInt32());
        Assert.Contains(_teleport.Advanced, run => run.Name == "beamed" && run.State?.GetProperty("submitted").GetInt32() == 5);
        Assert.Equal((Core.Runs.RunPhase.Failed, "1,3", "IndexesFailed"), (lossy.Phase, lossy.FailedIndexes, lossy.Find(Conditions.Failed)!.Reason));
        Assert.Equal("2 of 4 indexes failed; failed indexes: 1,3", lossy.Find(Conditions.Failed)!.Message);
        Assert.Contains("Succeeded", await fixture.KubectlAsync("get", "events", "-n", "teleport", "--field-selector", "involvedObject.name=beamed", "-o", "jsonpath={.items[*].reason}"), StringComparison.Ordinal);

        // Deleting it goes through the backend's release.
        await fixture.KubectlAsync("delete", "batchjob", "beamed", "-n", "teleport", "--wait=true", "--timeout=60s");
        Assert.Contains(_teleport.Released, run => run.Name == "beamed" && run.RunId == beamed.RunId);
    }

    [Fact]
    public async Task A_batchjob_naming_a_backend_this_controller_lacks_is_refused_naming_spec_backend_and_the_backends_here()
    {
        await fixture.ControlPlane.CreateNamespaceAsync("nowhere");

        await ApplyAsync("nowhere", "lost", "completions: 2", backend: "slurm");
        var status = await WaitForAsync("nowhere", "lost", s => s.Find(Conditions.Valid) is { Status: "False" });

        var valid = status.Find(Conditions.Valid)!;
        Assert.Equal(Conditions.Reasons.BackendUnavailable, valid.Reason);
        Assert.Equal("spec.backend: slurm is not a backend of this controller (backends here: kubernetes, aws-batch, teleport)", valid.Message);
        Assert.DoesNotContain(_teleport.Advanced, run => run.Namespace == "nowhere");
        Assert.Empty(_rig.Server.Jobs);
    }

    private async Task ApplyAsync(string ns, string name, string extra, string backend = "aws-batch")
    {
        var file = Path.Combine(fixture.ControlPlane.Directory, $"{ns}-{name}.yaml");
        await File.WriteAllTextAsync(file, $"""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {"{"}name: {name}, namespace: {ns}{"}"}
            spec:
              image: registry.example/sim:1
              command: [python, sim.py]
              backend: {backend}
              {extra}
            """);
        await fixture.KubectlAsync("apply", "-f", file);
    }

    private async Task<BatchJobStatus> WaitForAsync(string ns, string name, Func<BatchJobStatus, bool> condition)
    {
        BatchJobStatus status = new();
        await Support.Eventually.WaitAsync(async () =>
        {
            var found = await Admin.CustomObjects.GetNamespacedCustomObjectAsync<BatchJobObject>(
                BatchJobResource.Group, BatchJobResource.Version, ns, BatchJobResource.Plural, name);
            status = BatchJobStatus.FromJson(found.Status);
            return condition(status);
        }, $"BatchJob {ns}/{name}: {JsonSerializer.Serialize(status, BatchJobStatus.TypeInfo)}", 90);
        return status;
    }
}
