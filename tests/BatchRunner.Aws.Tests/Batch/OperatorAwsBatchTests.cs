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
    public async Task A_queue_full_on_kubernetes_overflows_the_waiting_indexes_to_aws_batch_and_each_index_runs_on_one_of_them()
    {
        await fixture.ControlPlane.CreateNamespaceAsync("burst");
        await using var pods = PodSimulator.Start(Admin, new PodSimulatorOptions { Namespace = "burst", PendingFor = TimeSpan.FromMilliseconds(300), RunningFor = TimeSpan.FromSeconds(1) });
        await ApplyQueueAsync("burst", """{kubernetes: {indexes: 2}}""");

        await ApplyAsync("burst", "sweep", "completions: 8\n  parallelism: 4\n  queue: burst", backend: "kubernetes");
        var status = await WaitForAsync("burst", "sweep", s => s.IsTerminal);

        // Two of its four at once fit the Kubernetes quota: indexes 0-3 stay there two at a time, 4-7 go to AWS Batch.
        Assert.Equal((Core.Runs.RunPhase.Succeeded, 8, 8, 0), (status.Phase, status.Total, status.Succeeded, status.Failed));
        Assert.Equal([("kubernetes", "0-3", 2, 4), ("aws-batch", "4-7", 2, 4)], status.Backends!.Select(b => (b.Name, b.Indexes, b.Parallelism, b.Succeeded)));
        Assert.Equal(("True", "OverflowDispatched"), (status.Find(Conditions.Overflow)!.Status, status.Find(Conditions.Overflow)!.Reason));
        var job = await Admin.BatchV1.ReadNamespacedJobAsync(BatchJobResource.JobName("sweep"), "burst");
        Assert.Equal((4, 2), (job.Spec.Completions, job.Spec.Parallelism));
        Assert.Contains(job.Spec.Template.Spec.Containers[0].Env, e => e.Name == "BATCHRUNNER_INDEXES" && e.Value == "0-3");
        // No index on both: AWS Batch ran exactly the indexes Kubernetes did not, never more than two at once.
        // (Runs other tests left in the shared cluster carry on with this test's controller: only this run's jobs count.)
        var arrays = _rig.Server.Jobs.Where(j => j.Name.StartsWith($"sweep-{status.RunId}-", StringComparison.Ordinal)).ToList();
        Assert.Equal([4, 5, 6, 7], arrays.SelectMany(j => Enumerable.Range(0, j.Size).Select(j.IndexOf)).Order());
        Assert.All(arrays, j => Assert.True(j.Size <= 2, $"{j.Name} holds {j.Size}"));
        await Support.Eventually.WaitAsync(
            async () => (await fixture.KubectlAsync("get", "events", "-n", "burst", "--field-selector", "involvedObject.name=sweep", "-o", "jsonpath={.items[*].reason}")).Contains("OverflowDispatched", StringComparison.Ordinal),
            "the OverflowDispatched event is recorded");
    }

    [Fact]
    public async Task Cancelling_a_run_split_across_kubernetes_and_aws_batch_stops_both()
    {
        await fixture.ControlPlane.CreateNamespaceAsync("burst-cancel");
        _rig.Server.AdvanceOnDescribe = false;
        await using var pods = PodSimulator.Start(Admin, new PodSimulatorOptions { Namespace = "burst-cancel", RunningFor = TimeSpan.FromMinutes(5) });
        await ApplyQueueAsync("burst-cancel", """{kubernetes: {indexes: 1}}""");

        await ApplyAsync("burst-cancel", "doomed", "completions: 6\n  parallelism: 3\n  queue: burst-cancel", backend: "kubernetes");
        // Kubernetes runs its index; AWS Batch holds its part submitted (the stub does not move it on here).
        await WaitForAsync("burst-cancel", "doomed", s => s.Backends is [{ Active: > 0 }, _] && Doomed().Count > 0);
        await fixture.KubectlAsync("annotate", "batchjob", "doomed", "-n", "burst-cancel", "batchrunner.io/cancel=true");
        var status = await WaitForAsync("burst-cancel", "doomed", s => s.Phase == Core.Runs.RunPhase.Cancelled);

        Assert.Equal([Core.Runs.RunPhase.Cancelled, Core.Runs.RunPhase.Cancelled], status.Backends!.Select(b => b.Phase));
        // One Kubernetes slot: 0-1 stay there one at a time, 2-5 went to AWS Batch two at a time (the first window is out).
        Assert.Equal([("kubernetes", "0-1"), ("aws-batch", "2-5")], status.Backends!.Select(b => (b.Name, b.Indexes)));
        Assert.Subset(new HashSet<int> { 2, 3, 4, 5 }, Doomed().SelectMany(j => Enumerable.Range(0, j.Size).Select(j.IndexOf)).ToHashSet());
        Assert.All(Doomed(), j => Assert.Contains("TerminateJob", j.StoppedBy));
        await Support.Eventually.WaitAsync(async () => (await Admin.BatchV1.ListNamespacedJobAsync("burst-cancel")).Items.All(j => j.Metadata.DeletionTimestamp is not null),
            "the Kubernetes part's Job is deleted");

        List<StubJob> Doomed() => [.. _rig.Server.Jobs.Where(j => j.Name.StartsWith("doomed-", StringComparison.Ordinal))];
    }

    /// <summary>A Queue named after the namespace: the given quotas, Kubernetes then AWS Batch, overflowing at once.</summary>
    private async Task ApplyQueueAsync(string name, string quotas)
    {
        var file = Path.Combine(fixture.ControlPlane.Directory, $"queue-{name}.yaml");
        await File.WriteAllTextAsync(file, $$"""
            apiVersion: batchrunner.io/v1alpha1
            kind: Queue
            metadata: {name: {{name}}}
            spec:
              backends: [kubernetes, aws-batch]
              quotas: {{quotas}}
              overflow: {afterSeconds: 0}
            """);
        await fixture.KubectlAsync("apply", "-f", file);
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
        // Events are written apart from the reconcile (and after new BatchJobs' Jobs): the Succeeded one follows shortly.
        await Support.Eventually.WaitAsync(
            async () => (await fixture.KubectlAsync("get", "events", "-n", "teleport", "--field-selector", "involvedObject.name=beamed", "-o", "jsonpath={.items[*].reason}")).Contains("Succeeded", StringComparison.Ordinal),
            "the Succeeded event is recorded");

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

    /// <summary>One document with every field set (a grid sweep and a list sweep), as each door hands it on.</summary>
    public static TheoryData<string> EveryField => new()
    {
        """
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata:
          name: every-field
          namespace: every-door
          labels: {team: queueing, "batchrunner.io/sweep": mmc}
          annotations: {note: "quotes \" and <angles> & ünïcode"}
        spec:
          image: registry.example/sim:1.2
          command: [python, sim.py]
          args: ["--mode", "full"]
          env: [{name: MODE, value: "fast"}, {name: EMPTY}]
          resources: {cpu: 500m, memory: 1536Mi}
          completions: 24
          parallelism: 6
          sweep:
            grid: {rho: [0.5, 0.75, 1], servers: [1, 2], policy: ["fifo", "l\"ifo"]}
            repeats: 2
            seed: 7
          retry: {attempts: 3, backoffSeconds: 2.5, maxBackoffSeconds: 60}
          timeoutSeconds: 120.5
          deadlineSeconds: 3600
          backend: teleport
          queue: research
          priority: -7
          results: {uri: "s3://results/prefix", format: csv}
        """,
        """
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: every-point, namespace: every-door-list}
        spec:
          image: registry.example/sim:1.2
          command: [sim]
          sweep:
            list: [{rho: 0.25, fast: true, name: a}, {rho: 1e3, fast: false, name: "b c"}]
            repeats: 3
            seed: 11
          backend: teleport
          results: {format: jsonl}
        """,
    };

    /// <summary>
    /// The CLI's file, the SQS body (as <c>batchrunner submit</c> sends it and the intake reads it), the custom
    /// resource the intake creates from it (through the API server, defaults and pruning included), and the stored
    /// spec the wrapper reads: each gives the same model, field for field.
    /// </summary>
    [Theory]
    [MemberData(nameof(EveryField))]
    public async Task One_document_with_every_field_set_comes_out_as_the_same_model_through_every_door(string document)
    {
        var expected = BatchRunner.Core.Spec.BatchJobParser.Parse(document).GetJobOrThrow();
        await fixture.ControlPlane.CreateNamespaceAsync(expected.Metadata.Namespace);
        var file = Path.Combine(fixture.ControlPlane.Directory, $"{expected.Metadata.Namespace}.yaml");
        await File.WriteAllTextAsync(file, document);

        // The CLI's file.
        var fromFile = await BatchRunner.Cli.Commands.SpecFile.LoadAsync(file, TextWriter.Null, default);

        // The SQS body, as the CLI's submit writes it, read by the intake.
        var body = BatchRunner.Core.Spec.BatchJobParser.ToJson(document)!;
        var request = BatchRunner.Aws.Intake.IntakeRequestReader.Read(body, null, null).Request!;

        // The custom resource the queue door creates from the request (its sink, through the API server's defaults and
        // pruning), read back as the reconciler reads it.
        var sink = new BatchRunner.Controller.Intake.KubernetesJobSink(Admin);
        var recorded = await sink.RecordAsync(new BatchRunner.Aws.Intake.JobRequest(request.Job, request.Document, request.ContentHash, "m-1"), default);
        Assert.True(recorded.Outcome == BatchRunner.Aws.Intake.SinkOutcome.Created, recorded.Reason);
        var fromResource = await ReadBackAsync(expected);

        // The same document applied with kubectl (the cluster door), read back the same way.
        await fixture.KubectlAsync("delete", "batchjob", expected.Metadata.Name, "-n", expected.Metadata.Namespace, "--wait=true", "--timeout=60s");
        await fixture.KubectlAsync("apply", "-f", file);
        var fromKubectl = await ReadBackAsync(expected);

        // The stored spec, as the wrapper reads it.
        var fromStore = BatchRunner.Core.Store.StoredSpec.Parse(BatchRunner.Core.Runs.RunIdentity.SpecJson(expected));

        // Annotations are the one part the cluster doors do not carry (the API server's and the intake's own are there).
        static string Model(BatchRunner.Core.Spec.BatchJob job) => BatchRunner.Core.Runs.RunIdentity.SpecJson(
            job with { Metadata = job.Metadata with { Annotations = new Dictionary<string, string>() } });
        var model = Model(expected);
        Assert.Equal(model, Model(fromFile!));
        Assert.Equal(model, Model(request.Job));
        Assert.Equal(model, Model(fromResource));
        Assert.Equal(model, Model(fromKubectl));
        Assert.Equal(BatchRunner.Core.Runs.RunIdentity.SpecJson(expected), BatchRunner.Core.Runs.RunIdentity.SpecJson(fromStore));
        Assert.Equal(expected.Metadata.Annotations, fromFile!.Metadata.Annotations);
        Assert.Equal(expected.Metadata.Annotations, request.Job.Metadata.Annotations);
        Assert.Equal(BatchRunner.Core.Runs.RunIdentity.For(expected), BatchRunner.Core.Runs.RunIdentity.For(fromResource));
    }

    private async Task<BatchRunner.Core.Spec.BatchJob> ReadBackAsync(BatchRunner.Core.Spec.BatchJob job)
    {
        var resource = await Admin.CustomObjects.GetNamespacedCustomObjectAsync<BatchJobObject>(
            BatchJobResource.Group, BatchJobResource.Version, job.Metadata.Namespace, BatchJobResource.Plural, job.Metadata.Name);
        return BatchRunner.Core.Spec.BatchJobParser.FromNode(resource.ToDocument()).GetJobOrThrow();
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
