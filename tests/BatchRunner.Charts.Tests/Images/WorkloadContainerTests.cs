using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Amazon.S3;
using BatchRunner.Aws.Batch;
using BatchRunner.Aws.S3;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Results.Tests.Support;
using BatchRunner.Store;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRunner.Charts.Tests.Images;

/// <summary>
/// The workload image runs its indexes in containers exactly as each backend of the product describes them: the
/// Kubernetes Job's pod (its init container from the controller image installing the wrapper, then the workload
/// container's command, environment and mounts, on a read-only root filesystem) and the AWS Batch job (the job
/// definition's environment and the submission's command). Both are built by the product's own code, not copied
/// here, so the containers cannot drift from what the backends submit. Each index's output and ledger row land in
/// fauxqs's S3 on 127.0.0.1.
/// </summary>
public sealed class WorkloadContainerTests : IDisposable
{
    private const string Uid = "6d0c3f4e-1b2a-4c5d-9e8f-7a6b5c4d3e2f";
    private readonly DirectoryInfo _temp = Directory.CreateTempSubdirectory("images-");

    public void Dispose() => _temp.Delete(recursive: true);

    [Fact]
    public async Task A_workload_container_runs_each_index_as_the_Kubernetes_Job_s_pod_says_and_its_results_reach_S3()
    {
        await BuiltImages.EnsureAsync();
        var (_, uri) = await S3Server.Shared.NewStoreAsync();
        var job = Sweep("containers-k8s", "kubernetes");
        var collection = new ResultsCollection(uri, BuiltImages.Controller, S3Server.Region, S3Server.Shared.Url, ForcePathStyle: true, CredentialsSecret: "store-credentials");
        var pod = JobManifests.IndexedJob(job, Uid, ClusterCapabilities.Current, new DispatchSettings(3600, collection)).Spec.Template;

        // The pod's volumes as the kubelet makes them: emptyDirs writable by all, the plan's files from its annotations.
        var volumes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var volume in pod.Spec.Volumes)
        {
            var folder = Directory.CreateDirectory(Path.Combine(_temp.FullName, volume.Name)).FullName;
            File.SetUnixFileMode(folder, (UnixFileMode)0b111_111_111);
            foreach (var item in volume.DownwardAPI?.Items ?? [])
            {
                var annotation = item.FieldRef.FieldPath["metadata.annotations['".Length..^2];
                await File.WriteAllTextAsync(Path.Combine(folder, item.Path), pod.Metadata.Annotations[annotation]);
            }

            volumes[volume.Name] = folder;
        }

        // The init container installs the wrapper from the controller image (chiseled: the wrapper copies itself).
        var init = Assert.Single(pod.Spec.InitContainers);
        var installed = await Podman.RunAsync(ContainerArguments(init, volumes, []), TimeSpan.FromMinutes(2));
        Assert.True(installed.ExitCode == 0, $"init container {init.Name} ({init.Image}): {installed}");
        Assert.True(File.Exists(Path.Combine(volumes["exec"], "batchrunner-exec")), "the init container left no wrapper in the exec volume");

        // Then each index's pod: the index from the Indexed Job, the store's credentials from the Secret the spec names.
        var workload = Assert.Single(pod.Spec.Containers);
        Assert.Equal("store-credentials", Assert.Single(workload.EnvFrom).SecretRef.Name);
        foreach (var index in Enumerable.Range(0, job.Spec.Completions))
        {
            var extra = new Dictionary<string, string>(Credentials) { ["JOB_COMPLETION_INDEX"] = index.ToString(CultureInfo.InvariantCulture) };
            var ran = await Podman.RunAsync(ContainerArguments(workload, volumes, extra), TimeSpan.FromMinutes(2));
            Assert.True(ran.ExitCode == 0, $"workload container of index {index} ({workload.Image}): {ran}");
        }

        await AssertLedgerAsync(uri, job);
    }

    [Fact]
    public async Task A_workload_container_runs_each_array_child_as_the_AWS_Batch_job_says_and_its_results_reach_S3()
    {
        await BuiltImages.EnsureAsync();
        var (_, uri) = await S3Server.Shared.NewStoreAsync();
        var job = Sweep("containers-aws", "aws-batch");
        var options = new AwsBatchOptions();
        Assert.True(FargateResources.TryMap(job.Spec.Resources.MilliCpu, job.Spec.Resources.MemoryBytes, out var size, out var error), error);
        var definition = JobDefinitions.For(job, size, options).ContainerProperties ?? throw new Xunit.Sdk.XunitException("the job definition has no container");

        // The spec where the dispatcher publishes it, and the one array job it submits for the run.
        var runId = RunIdentity.For(job);
        var publisher = new StoreRunSpecPublisher(S3Server.Shared.Options(uri), path => new LocalResultsStore(path));
        var state = new AwsBatchRunState
        {
            RunId = runId, JobQueue = "batchrunner", JobDefinition = "arn:aws:batch:us-east-1:123456789012:job-definition/x:1",
            SpecLocation = await publisher.PublishAsync(uri, job.Metadata.Name, runId, RunIdentity.SpecJson(job), CancellationToken.None),
        };
        using var limiter = new SubmitRateLimiter(10);
        var dispatcher = new AwsBatchDispatcher(api: null!, options, publisher, limiter, TimeProvider.System, NullLogger<AwsBatchDispatcher>.Instance);
        var submission = dispatcher.SubmitRequest(job, runId, state, "containers-aws", 0, job.Spec.Completions, uri);
        Assert.Equal(job.Spec.Completions, submission.ArrayProperties?.Size);
        var overrides = submission.ContainerOverrides ?? throw new Xunit.Sdk.XunitException("the submission overrides nothing of its container");
        var image = definition.Image ?? throw new Xunit.Sdk.XunitException("the job definition names no image");

        // Each child as Fargate runs it: the definition's image and environment, the submission's command (it replaces
        // the image's CMD; the workload images have no ENTRYPOINT) and environment, and what AWS Batch sets itself.
        foreach (var child in Enumerable.Range(0, job.Spec.Completions))
        {
            var environment = new Dictionary<string, string>(Credentials, StringComparer.Ordinal)
            {
                ["AWS_BATCH_JOB_ID"] = $"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0:{child}",
                ["AWS_BATCH_JOB_ARRAY_INDEX"] = child.ToString(CultureInfo.InvariantCulture),
                ["AWS_BATCH_JOB_ATTEMPT"] = "1",
            };
            foreach (var variable in (definition.Environment ?? []).Concat(overrides.Environment ?? []))
            {
                environment[variable.Name] = variable.Value;
            }

            string[] arguments =
            [
                "run", "--rm", "--pull=never", "--network", "host",
                .. environment.SelectMany(e => new[] { "-e", $"{e.Key}={e.Value}" }),
                image, .. overrides.Command ?? [],
            ];
            var ran = await Podman.RunAsync(arguments, TimeSpan.FromMinutes(2));
            Assert.True(ran.ExitCode == 0, $"array child {child} ({image}): {ran}");
        }

        await AssertLedgerAsync(uri, job);
    }

    /// <summary>fauxqs's S3, as the Secret (Kubernetes) or the task role (Fargate) would give it.</summary>
    private static Dictionary<string, string> Credentials => new(S3Server.Shared.Environment(), StringComparer.Ordinal);

    /// <summary>Two points of the M/M/c simulation in the workload image, with its own command.</summary>
    private static BatchJob Sweep(string name, string backend) => BatchJobParser.Parse($$"""
        {"apiVersion": "batchrunner.io/v1alpha1", "kind": "BatchJob",
         "metadata": {"name": "{{name}}", "namespace": "sweeps"},
         "spec": {"image": "{{BuiltImages.MmcQueue}}", "command": ["dotnet", "workloads/bin/mmc-queue/mmc-queue.dll"], "backend": "{{backend}}",
                  "resources": {"cpu": "1", "memory": "2Gi"},
                  "sweep": {"grid": {"arrival_rate": [0.5], "service_rate": [1.0], "servers": [1, 2]}, "seed": 7} } }
        """).GetJobOrThrow();

    /// <summary>
    /// podman's arguments for a container of a pod spec: Kubernetes' command replaces the image's ENTRYPOINT and its
    /// args the CMD; volumes mounted as the spec says; a read-only root filesystem and no tmpfs podman would add, so
    /// anything the container writes outside its volumes fails here as it would under a restricted policy.
    /// </summary>
    private static List<string> ContainerArguments(V1Container container, Dictionary<string, string> volumes, Dictionary<string, string> extraEnvironment)
    {
        var arguments = new List<string> { "run", "--rm", "--pull=never", "--network", "host", "--read-only", "--read-only-tmpfs=false" };
        foreach (var mount in container.VolumeMounts ?? [])
        {
            arguments.AddRange(["-v", $"{volumes[mount.Name]}:{mount.MountPath}{(mount.ReadOnlyProperty == true ? ":ro" : "")}"]);
        }

        foreach (var variable in container.Env ?? [])
        {
            Assert.Null(variable.ValueFrom);
            arguments.AddRange(["-e", $"{variable.Name}={variable.Value}"]);
        }

        foreach (var (name, value) in extraEnvironment)
        {
            arguments.AddRange(["-e", $"{name}={value}"]);
        }

        if (container.Command is { Count: > 0 } command)
        {
            arguments.AddRange(["--entrypoint", JsonSerializer.Serialize(command)]);
        }

        arguments.Add(container.Image);
        arguments.AddRange(container.Args ?? []);
        return arguments;
    }

    /// <summary>Every index's first attempt left its ledger row, succeeded, with the rows its output held.</summary>
    private static async Task AssertLedgerAsync(string uri, BatchJob job)
    {
        var location = StoreUri.Parse(uri);
        var runId = RunIdentity.For(job);
        using var client = S3Server.Shared.Client();
        foreach (var index in Enumerable.Range(0, job.Spec.Completions))
        {
            var key = string.Join('/', new[] { location.Prefix.Trim('/'), StoreLayout.LedgerKey(job.Metadata.Name, runId, index, 1) }.Where(part => part.Length > 0));
            JsonNode ledger;
            try
            {
                using var response = await client.GetObjectAsync(location.Bucket, key);
                ledger = (await JsonNode.ParseAsync(response.ResponseStream))!;
            }
            catch (AmazonS3Exception e)
            {
                throw new Xunit.Sdk.XunitException($"no ledger row for index {index} at s3://{location.Bucket}/{key}: {e.Message}");
            }

            Assert.Equal("succeeded", (string?)ledger["status"]);
            Assert.Equal(index, (int?)ledger["index"]);
            Assert.True((int?)ledger["output_rows"] > 0, $"index {index} stored no result rows: {ledger.ToJsonString()}");
        }
    }
}
