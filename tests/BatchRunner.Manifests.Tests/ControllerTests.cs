using System.Text.Json.Nodes;

namespace BatchRunner.Manifests.Tests;

/// <summary>The controller's Deployment, Service and PodDisruptionBudget.</summary>
public class ControllerTests
{
    private static readonly IReadOnlyList<JsonObject> Objects = Manifests.Installable();

    private static JsonObject Deployment => Manifests.Single(Objects, "Deployment", Manifests.ControllerName);

    private static JsonNode PodSpec => Deployment["spec"]!["template"]!["spec"]!;

    private static JsonNode Container => Assert.Single(PodSpec["containers"]!.AsArray())!;

    [Fact]
    public void The_controller_runs_as_non_root_with_a_read_only_root_filesystem()
    {
        var pod = PodSpec["securityContext"]!;
        var container = Container["securityContext"]!;

        Assert.True(pod["runAsNonRoot"]!.GetValue<bool>());
        Assert.Equal(1654L, pod["runAsUser"]!.GetValue<long>());
        Assert.Equal("RuntimeDefault", Manifests.Str(pod["seccompProfile"]!["type"]));
        Assert.True(container["runAsNonRoot"]!.GetValue<bool>());
        Assert.Equal(1654L, container["runAsUser"]!.GetValue<long>());
        Assert.False(container["allowPrivilegeEscalation"]!.GetValue<bool>());
        Assert.True(container["readOnlyRootFilesystem"]!.GetValue<bool>());
        Assert.Equal(["ALL"], Manifests.Strings(container["capabilities"]!["drop"]));
        Assert.Null(container["capabilities"]!["add"]);
        Assert.Null(container["privileged"]);
        Assert.Equal("RuntimeDefault", Manifests.Str(container["seccompProfile"]!["type"]));

        // The one writable place is an emptyDir at /tmp.
        var mount = Assert.Single(Container["volumeMounts"]!.AsArray())!;
        Assert.Equal("/tmp", Manifests.Str(mount["mountPath"]));
        var volume = Assert.Single(PodSpec["volumes"]!.AsArray())!;
        Assert.Equal(Manifests.Str(mount["name"]), Manifests.Str(volume["name"]));
        Assert.NotNull(volume["emptyDir"]);

        // The namespace enforces the restricted Pod Security Standard, which these settings meet.
        var ns = Manifests.Single(Objects, "Namespace", Manifests.ControllerNamespace);
        Assert.Equal("restricted", Manifests.Str(ns["metadata"]!["labels"]!["pod-security.kubernetes.io/enforce"]));
    }

    [Fact]
    public void Two_replicas_elect_a_leader_named_by_the_downward_api()
    {
        Assert.Equal(2L, Deployment["spec"]!["replicas"]!.GetValue<long>());
        Assert.Equal("batchrunner/controller:latest", Manifests.Str(Container["image"]));
        Assert.Equal("IfNotPresent", Manifests.Str(Container["imagePullPolicy"]));

        var env = Container["env"]!.AsArray().ToDictionary(e => Manifests.Str(e!["name"])!, e => e!);
        Assert.Equal("true", Manifests.Str(env["BatchRunner__Kubernetes__Enabled"]["value"]));
        Assert.Equal("metadata.namespace", Manifests.Str(env["BatchRunner__LeaderElection__Namespace"]["valueFrom"]!["fieldRef"]!["fieldPath"]));
        Assert.Equal("metadata.name", Manifests.Str(env["POD_NAME"]["valueFrom"]!["fieldRef"]!["fieldPath"]));
    }

    [Fact]
    public void Probes_metrics_and_the_disruption_budget_point_at_the_controller_pods()
    {
        var port = Assert.Single(Container["ports"]!.AsArray())!;
        Assert.Equal(("http", 8080L), (Manifests.Str(port["name"]), port["containerPort"]!.GetValue<long>()));
        Assert.Equal(("/healthz", "http"), (Manifests.Str(Container["livenessProbe"]!["httpGet"]!["path"]), Manifests.Str(Container["livenessProbe"]!["httpGet"]!["port"])));
        Assert.Equal(("/readyz", "http"), (Manifests.Str(Container["readinessProbe"]!["httpGet"]!["path"]), Manifests.Str(Container["readinessProbe"]!["httpGet"]!["port"])));

        var resources = Container["resources"]!;
        Assert.Equal(("100m", "128Mi"), (Manifests.Str(resources["requests"]!["cpu"]), Manifests.Str(resources["requests"]!["memory"])));
        Assert.Equal("512Mi", Manifests.Str(resources["limits"]!["memory"]));

        var podLabels = Deployment["spec"]!["template"]!["metadata"]!["labels"]!.AsObject();
        Assert.True(Selects(Deployment["spec"]!["selector"]!["matchLabels"]!.AsObject(), podLabels));

        var service = Manifests.Single(Objects, "Service", "batchrunner-controller-metrics");
        Assert.Equal(Manifests.ControllerNamespace, Manifests.Str(service["metadata"]!["namespace"]));
        Assert.True(Selects(service["spec"]!["selector"]!.AsObject(), podLabels));
        var servicePort = Assert.Single(service["spec"]!["ports"]!.AsArray())!;
        Assert.Equal((8080L, "http"), (servicePort["port"]!.GetValue<long>(), Manifests.Str(servicePort["targetPort"])));

        var budget = Assert.Single(Objects, o => Manifests.Str(o["kind"]) == "PodDisruptionBudget");
        Assert.Equal(Manifests.ControllerNamespace, Manifests.Str(budget["metadata"]!["namespace"]));
        Assert.Equal(1L, budget["spec"]!["minAvailable"]!.GetValue<long>());
        Assert.True(Selects(budget["spec"]!["selector"]!["matchLabels"]!.AsObject(), podLabels));
    }

    private static bool Selects(JsonObject selector, JsonObject labels) =>
        selector.Count > 0 && selector.All(kv => Manifests.Str(labels[kv.Key]) == Manifests.Str(kv.Value));
}
