using System.Text.Json.Nodes;

namespace BatchRunner.Charts.Tests;

/// <summary>
/// The chart and manifests/ install the same thing: the chart's default values, released as "batchrunner" in
/// batchrunner-system, give the objects of `kubectl apply -k manifests/` (less the Namespace, which
/// `helm install --create-namespace` makes) with the same CRD, RBAC rules and controller essentials.
/// Change one and this test says what to change in the other.
/// </summary>
public class ManifestsDriftTests
{
    private static readonly IReadOnlyList<JsonObject> Chart = Helm.Render("--include-crds").Objects();
    private static readonly IReadOnlyList<JsonObject> Kustomize = ManifestFiles.Installable();

    [Fact]
    public void The_chart_installs_the_objects_of_the_manifests()
    {
        static IEnumerable<string> Names(IEnumerable<JsonObject> objects) =>
            objects.Select(o => $"{Helm.Str(o["kind"])}/{Helm.Str(o["metadata"]!["name"])}/{Helm.Str(o["metadata"]!["namespace"])}").Order(StringComparer.Ordinal);

        Assert.Equal(Names(Kustomize.Where(o => Helm.Str(o["kind"]) != "Namespace")), Names(Chart));
    }

    [Fact]
    public void The_crd_is_the_same_file()
    {
        Assert.Equal(
            File.ReadAllText(ManifestFiles.CrdPath),
            File.ReadAllText(Path.Combine(Helm.ChartPath, "crds", "batchjobs.batchrunner.io.yaml")));
        Assert.Equal(
            Directory.GetFiles(Path.Combine(ManifestFiles.Root, "crds")).Select(Path.GetFileName).Order(StringComparer.Ordinal),
            Directory.GetFiles(Path.Combine(Helm.ChartPath, "crds")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("ClusterRole", "batchrunner-controller")]
    [InlineData("Role", "batchrunner-controller-leader-election")]
    public void The_rbac_rules_are_the_same(string kind, string name)
    {
        Assert.Equal(Granted(Helm.Single(Kustomize, kind, name)), Granted(Helm.Single(Chart, kind, name)));
    }

    [Theory]
    [InlineData("ClusterRoleBinding", "batchrunner-controller")]
    [InlineData("RoleBinding", "batchrunner-controller-leader-election")]
    public void The_bindings_are_the_same(string kind, string name)
    {
        var expected = Helm.Single(Kustomize, kind, name);
        var actual = Helm.Single(Chart, kind, name);
        Assert.True(JsonNode.DeepEquals(expected["roleRef"], actual["roleRef"]), $"{kind}/{name}: roleRef differs");
        Assert.True(JsonNode.DeepEquals(expected["subjects"], actual["subjects"]), $"{kind}/{name}: subjects differ");
    }

    [Fact]
    public void The_controller_deployment_has_the_same_essentials()
    {
        var expected = Helm.Single(Kustomize, "Deployment", "batchrunner-controller");
        var actual = Helm.Single(Chart, "Deployment", "batchrunner-controller");
        var expectedPod = expected["spec"]!["template"]!["spec"]!;
        var actualPod = actual["spec"]!["template"]!["spec"]!;
        var expectedContainer = expectedPod["containers"]![0]!;
        var actualContainer = actualPod["containers"]![0]!;

        Same(expected, actual, "spec.replicas", d => d["spec"]!["replicas"]);
        Same(expected, actual, "spec.revisionHistoryLimit", d => d["spec"]!["revisionHistoryLimit"]);
        foreach (var field in new[] { "serviceAccountName", "terminationGracePeriodSeconds", "securityContext", "volumes" })
        {
            Same(expectedPod, actualPod, $"pod {field}", p => p[field]);
        }

        foreach (var field in new[] { "name", "imagePullPolicy", "ports", "livenessProbe", "readinessProbe", "resources", "volumeMounts" })
        {
            Same(expectedContainer, actualContainer, $"container {field}", c => c[field]);
        }

        // The chart's container context is the manifests' (key order aside).
        Same(expectedContainer, actualContainer, "container securityContext", c => c["securityContext"]);
        Assert.Equal(Repository(Helm.Str(expectedContainer["image"])!), Repository(Helm.Str(actualContainer["image"])!));

        // Every variable the manifests set, the chart sets the same way (it may set more: the defaults spelled out).
        var actualEnv = ChartRenderTests.Env(actualContainer);
        foreach (var variable in expectedContainer["env"]!.AsArray())
        {
            var name = Helm.Str(variable!["name"])!;
            Assert.True(actualEnv.TryGetValue(name, out var mine), $"the chart does not set {name}");
            Assert.True(JsonNode.DeepEquals(variable, mine), $"{name}: manifests {variable.ToJsonString()}, chart {mine.ToJsonString()}");
        }

        // The anti-affinity spreads the same pods (the chart's selector adds the release's instance label).
        var expectedTerm = expectedPod["affinity"]!["podAntiAffinity"]!["preferredDuringSchedulingIgnoredDuringExecution"]![0]!;
        var actualTerm = actualPod["affinity"]!["podAntiAffinity"]!["preferredDuringSchedulingIgnoredDuringExecution"]![0]!;
        Same(expectedTerm, actualTerm, "anti-affinity topologyKey", t => t["podAffinityTerm"]!["topologyKey"]);
        Assert.All(expectedTerm["podAffinityTerm"]!["labelSelector"]!["matchLabels"]!.AsObject(),
            kv => Assert.Equal(Helm.Str(kv.Value), Helm.Str(actualTerm["podAffinityTerm"]!["labelSelector"]!["matchLabels"]![kv.Key])));
    }

    [Fact]
    public void The_service_and_the_disruption_budget_are_the_same()
    {
        var expectedService = Helm.Single(Kustomize, "Service", "batchrunner-controller-metrics");
        var actualService = Helm.Single(Chart, "Service", "batchrunner-controller-metrics");
        Same(expectedService, actualService, "Service ports", s => s["spec"]!["ports"]);
        Same(expectedService, actualService, "Service type", s => s["spec"]!["type"]);

        var expectedBudget = Helm.Single(Kustomize, "PodDisruptionBudget", "batchrunner-controller");
        var actualBudget = Helm.Single(Chart, "PodDisruptionBudget", "batchrunner-controller");
        Same(expectedBudget, actualBudget, "PodDisruptionBudget apiVersion", b => b["apiVersion"]);
        Same(expectedBudget, actualBudget, "PodDisruptionBudget minAvailable", b => b["spec"]!["minAvailable"]);
    }

    private static void Same(JsonNode expected, JsonNode actual, string what, Func<JsonNode, JsonNode?> pick) =>
        Assert.True(JsonNode.DeepEquals(pick(expected), pick(actual)), $"{what}: manifests {pick(expected)?.ToJsonString()}, chart {pick(actual)?.ToJsonString()}");

    private static string Repository(string image) => image[..image.LastIndexOf(':')];

    private static SortedSet<string> Granted(JsonObject role) =>
        new(role["rules"]!.AsArray().SelectMany(rule =>
            from g in ManifestFiles.Strings(rule!["apiGroups"])
            from r in ManifestFiles.Strings(rule["resources"])
            from v in ManifestFiles.Strings(rule["verbs"])
            select $"{g}/{r}:{v}"), StringComparer.Ordinal);
}
