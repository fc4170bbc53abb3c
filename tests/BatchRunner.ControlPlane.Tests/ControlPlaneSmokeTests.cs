using System.Net;
using BatchRunner.Kubernetes.Testing;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Xunit;
using TestControlPlane = BatchRunner.Kubernetes.Testing.ControlPlane;

namespace BatchRunner.ControlPlane.Tests;

/// <summary>The test control plane does what BatchRunner's Kubernetes tests rely on.</summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class ControlPlaneSmokeTests(ControlPlaneFixture fixture)
{
    private static readonly TimeSpan Converges = TimeSpan.FromSeconds(60);

    private readonly TestControlPlane cluster = fixture.ControlPlane;

    private IKubernetes Admin => cluster.AdminClient;

    [Fact]
    public async Task A_job_runs_to_completion_through_the_pod_simulator()
    {
        var ns = await NewNamespaceAsync();
        // The command runs on this machine and succeeds only if the Pod's env reached it.
        await using var simulator = PodSimulator.Start(Admin, new PodSimulatorOptions
        {
            Namespace = ns,
            Outcome = _ => PodOutcome.RunCommand,
        });
        var job = Job("sweep", completions: 3, parallelism: 2, ["/bin/sh", "-c", "test \"$GREETING\" = hello"]);
        job.Spec.Template.Spec.Containers[0].Env = [new V1EnvVar { Name = "GREETING", Value = "hello" }];
        job.Spec.BackoffLimit = 0;

        await Admin.BatchV1.CreateNamespacedJobAsync(job, ns);

        var done = await WaitForJobAsync(ns, "sweep", j => HasCondition(j, "Complete") || HasCondition(j, "Failed"));
        Assert.True(HasCondition(done, "Complete"), $"the job failed: {simulator.Finished} pods ended");
        Assert.Equal(3, done.Status.Succeeded);
        Assert.Null(done.Status.Failed);
        Assert.Empty(simulator.Errors);
        var pods = await Admin.CoreV1.ListNamespacedPodAsync(ns, labelSelector: "job-name=sweep");
        Assert.Equal(3, pods.Items.Count);
        Assert.All(pods.Items, pod =>
        {
            Assert.Equal("Succeeded", pod.Status.Phase);
            Assert.Equal(0, pod.Status.ContainerStatuses.Single().State.Terminated.ExitCode);
        });
    }

    [Fact]
    public async Task A_failed_pod_counts_as_a_job_failure()
    {
        var ns = await NewNamespaceAsync();
        await using var simulator = PodSimulator.Start(Admin, new PodSimulatorOptions
        {
            Namespace = ns,
            Outcome = _ => PodOutcome.Fail(exitCode: 3),
        });
        var job = Job("doomed", completions: 1, parallelism: 1, ["/bin/false"]);
        job.Spec.BackoffLimit = 0;

        await Admin.BatchV1.CreateNamespacedJobAsync(job, ns);

        var failed = await WaitForJobAsync(ns, "doomed", j => HasCondition(j, "Failed"));
        Assert.Equal(1, failed.Status.Failed);
        Assert.Equal("BackoffLimitExceeded", failed.Status.Conditions.Single(c => c.Type == "Failed").Reason);
        Assert.Empty(simulator.Errors);
        var pod = (await Admin.CoreV1.ListNamespacedPodAsync(ns, labelSelector: "job-name=doomed")).Items.Single();
        Assert.Equal("Failed", pod.Status.Phase);
        Assert.Equal(3, pod.Status.ContainerStatuses.Single().State.Terminated.ExitCode);
    }

    [Fact]
    public async Task A_service_account_kubeconfig_is_restricted_by_rbac()
    {
        var ns = await NewNamespaceAsync();
        var kubeconfig = await cluster.CreateServiceAccountKubeconfigAsync(ns, "operator");
        using var restricted = TestControlPlane.CreateClient(kubeconfig);

        var denied = await Assert.ThrowsAsync<HttpOperationException>(() => restricted.CoreV1.ListNamespacedSecretAsync(ns));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Response.StatusCode);

        await Admin.RbacAuthorizationV1.CreateNamespacedRoleAsync(new V1Role
        {
            Metadata = new V1ObjectMeta { Name = "secret-reader" },
            Rules = [new V1PolicyRule { ApiGroups = [""], Resources = ["secrets"], Verbs = ["get", "list"] }],
        }, ns);
        await Admin.RbacAuthorizationV1.CreateNamespacedRoleBindingAsync(new V1RoleBinding
        {
            Metadata = new V1ObjectMeta { Name = "operator-reads-secrets" },
            RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "Role", Name = "secret-reader" },
            Subjects = [new Rbacv1Subject { Kind = "ServiceAccount", Name = "operator", NamespaceProperty = ns }],
        }, ns);

        // The authorizer reads RBAC objects from a cache: the grant applies within moments, not at once.
        await Eventually.TrueAsync(async () => (await restricted.CoreV1.ListNamespacedSecretAsync(ns)).Items.Count > 0,
            TimeSpan.FromSeconds(10), "the operator account lists secrets");
        // Only what was granted: other namespaces and other verbs stay forbidden.
        var elsewhere = await Assert.ThrowsAsync<HttpOperationException>(() => restricted.CoreV1.ListNamespacedSecretAsync("default"));
        Assert.Equal(HttpStatusCode.Forbidden, elsewhere.Response.StatusCode);
    }

    [Fact]
    public async Task The_pod_simulator_gives_a_command_the_pods_environment()
    {
        // 1.20 has no Indexed Jobs, so no Pod carries the completion index annotation: put it on a bare Pod.
        var ns = await NewNamespaceAsync();
        await using var simulator = PodSimulator.Start(Admin, new PodSimulatorOptions
        {
            Namespace = ns,
            Outcome = _ => PodOutcome.RunCommand,
        });
        var script = """test "$JOB_COMPLETION_INDEX" = 7 && test "$POD" = indexed && test "$1" = "literal-7" """;
        await Admin.CoreV1.CreateNamespacedPodAsync(new V1Pod
        {
            Metadata = new V1ObjectMeta
            {
                Name = "indexed",
                Annotations = new Dictionary<string, string> { [PodSimulator.CompletionIndexAnnotation] = "7" },
            },
            Spec = new V1PodSpec
            {
                RestartPolicy = "Never",
                Containers =
                [
                    new V1Container
                    {
                        Name = "main",
                        Image = "busybox:1.36",
                        Command = ["/bin/sh", "-c", script, "sh", "$(PREFIX)-7"],
                        Env =
                        [
                            new V1EnvVar { Name = "PREFIX", Value = "literal" },
                            new V1EnvVar { Name = "POD", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.name" } } },
                        ],
                    },
                ],
            },
        }, ns);

        V1Pod? pod = null;
        await Eventually.TrueAsync(async () => (pod = await Admin.CoreV1.ReadNamespacedPodAsync("indexed", ns)).Status.Phase is "Succeeded" or "Failed",
            Converges, "the pod ends");
        Assert.True(pod!.Status.Phase == "Succeeded", pod.Status.ContainerStatuses.Single().State.Terminated.Message);
        Assert.NotNull(pod.Status.StartTime);
        Assert.Empty(simulator.Errors);
    }

    private async Task<string> NewNamespaceAsync()
    {
        var name = $"test-{Guid.NewGuid():N}"[..20];
        await cluster.CreateNamespaceAsync(name);
        return name;
    }

    private static V1Job Job(string name, int completions, int parallelism, string[] command) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1JobSpec
        {
            Completions = completions,
            Parallelism = parallelism,
            Template = new V1PodTemplateSpec
            {
                Spec = new V1PodSpec
                {
                    RestartPolicy = "Never",
                    Containers = [new V1Container { Name = "main", Image = "busybox:1.36", Command = command }],
                },
            },
        },
    };

    private static bool HasCondition(V1Job job, string type) =>
        job.Status?.Conditions?.Any(c => c.Type == type && c.Status == "True") == true;

    private async Task<V1Job> WaitForJobAsync(string ns, string name, Func<V1Job, bool> done)
    {
        V1Job? job = null;
        await Eventually.TrueAsync(async () => done(job = await Admin.BatchV1.ReadNamespacedJobAsync(name, ns)),
            Converges, $"job {ns}/{name}");
        return job!;
    }
}
