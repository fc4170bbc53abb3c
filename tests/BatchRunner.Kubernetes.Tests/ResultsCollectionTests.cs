using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Dispatch;
using k8s.Models;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>With a results store configured, pods run batchrunner-exec, delivered by an init container; without one, the sh entrypoint.</summary>
public sealed class ResultsCollectionTests
{
    private static readonly BatchJob Sweep = Specs.Job("""{"args": ["--fast"], "sweep": {"grid": {"rate": [0.5, 0.9]}}}""");

    private static readonly ResultsCollection Collection = new("s3://bucket/results", "registry.example/batchrunner/controller:1.2", "eu-west-1", "http://minio:9000", ForcePathStyle: true);

    private static V1PodSpec Pod(BatchJob job, ResultsCollection? collection) =>
        JobManifests.IndexedJob(job, Specs.Uid, ClusterCapabilities.Current, DispatchSettings.Default with { Results = collection }).Spec.Template.Spec;

    [Fact]
    public void The_init_container_copies_the_wrapper_from_the_controller_image_into_a_volume_the_workload_mounts()
    {
        var pod = Pod(Sweep, Collection);

        var init = Assert.Single(pod.InitContainers);
        Assert.Equal(("batchrunner-exec", "registry.example/batchrunner/controller:1.2"), (init.Name, init.Image));
        Assert.Equal(["/app/batchrunner-exec", "--install", "/opt/batchrunner/batchrunner-exec"], init.Command);
        Assert.Equal(("exec", "/opt/batchrunner"), (init.VolumeMounts.Single().Name, init.VolumeMounts.Single().MountPath));
        Assert.NotNull(pod.Volumes.Single(v => v.Name == "exec").EmptyDir);
        var mount = pod.Containers.Single().VolumeMounts.Single(m => m.Name == "exec");
        Assert.Equal(("/opt/batchrunner", true), (mount.MountPath, mount.ReadOnlyProperty));
    }

    [Fact]
    public void The_wrapper_s_temporary_folder_is_a_volume_so_a_read_only_root_filesystem_does_not_stop_it()
    {
        var pod = Pod(Sweep, Collection);

        var scratch = pod.Containers.Single().VolumeMounts.Single(m => m.MountPath == "/tmp");
        Assert.NotEqual(true, scratch.ReadOnlyProperty);
        Assert.NotNull(pod.Volumes.Single(v => v.Name == scratch.Name).EmptyDir);
        // Without a store no wrapper runs, and the Job stays as small as it was.
        Assert.DoesNotContain(Pod(Sweep, null).Containers.Single().VolumeMounts, m => m.MountPath == "/tmp");
    }

    [Fact]
    public void The_workload_runs_the_wrapper_with_the_plans_spec_and_the_store_then_its_own_command()
    {
        var container = Pod(Sweep, Collection).Containers.Single();

        Assert.Equal(["/opt/batchrunner/batchrunner-exec", "--spec", "/etc/batchrunner/spec.json", "--store", "s3://bucket/results", "--"], container.Command);
        Assert.Equal(["python", "sim.py", "--fast"], container.Args);
        Assert.Equal("registry.example/sim:1", container.Image);
        var env = container.Env.ToDictionary(e => e.Name, e => e.Value);
        Assert.Equal(("eu-west-1", "http://minio:9000", "true"), (env["BatchRunner__Results__Region"], env["BatchRunner__Results__EndpointUrl"], env["BatchRunner__Results__ForcePathStyle"]));
        Assert.Equal("/batchrunner/output", env["BATCHRUNNER_OUTPUT_DIR"]);
        Assert.DoesNotContain(env.Keys, k => k.StartsWith("AWS_SECRET", StringComparison.Ordinal));
    }

    [Fact]
    public void A_credentials_secret_is_referenced_by_name_and_never_copied()
    {
        var container = Pod(Sweep, Collection with { CredentialsSecret = "results-credentials" }).Containers.Single();

        Assert.Equal("results-credentials", container.EnvFrom.Single().SecretRef.Name);
        Assert.Null(Pod(Sweep, Collection).Containers.Single().EnvFrom);
    }

    [Fact]
    public void A_spec_naming_its_own_results_uri_is_collected_there()
    {
        var job = Specs.Job("""{"results": {"uri": "s3://other/prefix"}}""");

        Assert.Equal("s3://other/prefix", Pod(job, Collection).Containers.Single().Command[4]);
    }

    [Fact]
    public void Without_a_results_store_the_pod_is_exactly_as_before()
    {
        var without = Pod(Sweep, null);

        Assert.Null(without.InitContainers);
        Assert.Equal(["/bin/sh", "/etc/batchrunner/entrypoint.sh"], without.Containers.Single().Command);
        Assert.Equal(["plan", "output"], without.Volumes.Select(v => v.Name));
        Assert.DoesNotContain(without.Containers.Single().Env ?? [], e => e.Name.StartsWith("BatchRunner__", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_container_uses_an_image_already_on_the_node_even_a_latest_one(bool withStore)
    {
        // :latest would default to Always, which cannot find an image loaded into minikube without a registry.
        var job = Specs.Job("""{"image": "batchrunner/mmc-queue:latest"}""");
        var pod = Pod(job, withStore ? Collection with { ExecImage = "batchrunner/controller:latest" } : null);

        var containers = (pod.InitContainers ?? []).Concat(pod.Containers).ToList();
        Assert.Equal(withStore ? 2 : 1, containers.Count);
        Assert.All(containers, c => Assert.Equal("IfNotPresent", c.ImagePullPolicy));
        Assert.EndsWith(":latest", pod.Containers.Single().Image, StringComparison.Ordinal);
    }
}
