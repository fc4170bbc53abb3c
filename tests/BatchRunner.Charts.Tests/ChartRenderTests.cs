using System.Text.Json.Nodes;

namespace BatchRunner.Charts.Tests;

/// <summary>Each target's values render a complete, well-formed, restricted install.</summary>
public class ChartRenderTests
{
    private static readonly string[] ClusterScoped = ["CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace"];

    [Theory]
    [MemberData(nameof(Helm.ValuesFiles), MemberType = typeof(Helm))]
    public void Every_document_is_a_complete_object_in_the_release_namespace(string valuesFile)
    {
        var rendering = Helm.Render([.. Helm.ValuesArgs(valuesFile), "--include-crds"]);
        var objects = rendering.Objects();

        Assert.DoesNotContain("<no value>", rendering.Output, StringComparison.Ordinal);
        Assert.NotEmpty(objects);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var o in objects)
        {
            var kind = Helm.Str(o["kind"]);
            var name = Helm.Str(o["metadata"]?["name"]);
            Assert.False(string.IsNullOrEmpty(Helm.Str(o["apiVersion"])), $"{kind}/{name}: no apiVersion");
            Assert.False(string.IsNullOrEmpty(kind), $"a document without kind: {o.ToJsonString()}");
            Assert.False(string.IsNullOrEmpty(name), $"{kind}: no metadata.name");
            Assert.Matches("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", name);
            Assert.True(name!.Length <= 63 || kind == "CustomResourceDefinition", $"{kind}/{name} is longer than 63 characters");
            Assert.True(seen.Add($"{kind}/{name}/{Helm.Str(o["metadata"]!["namespace"])}"), $"{kind}/{name} is rendered twice");
            if (ClusterScoped.Contains(kind))
            {
                Assert.Null(o["metadata"]!["namespace"]);
            }
            else if (kind == "Secret" && name == "batchrunner-s3-credentials")
            {
                // The in-cluster store's keys for Job pods go where the BatchJobs are (s3Store.jobNamespaces).
                Assert.Equal("default", Helm.Str(o["metadata"]!["namespace"]));
            }
            else
            {
                Assert.Equal(Helm.Namespace, Helm.Str(o["metadata"]!["namespace"]));
            }

            if (kind != "CustomResourceDefinition")
            {
                Assert.Equal("batchrunner", Helm.Str(o["metadata"]!["labels"]?["app.kubernetes.io/part-of"]));
                Assert.Equal("Helm", Helm.Str(o["metadata"]!["labels"]?["app.kubernetes.io/managed-by"]));
            }
        }

        // The CRD comes first (crds/ is installed before any template), as it is under manifests/crds.
        Assert.Equal("CustomResourceDefinition", Helm.Str(objects[0]["kind"]));
    }

    [Theory]
    [MemberData(nameof(Helm.ValuesFiles), MemberType = typeof(Helm))]
    public void Every_pod_meets_the_restricted_pod_security_standard(string valuesFile)
    {
        var objects = Helm.Render(Helm.ValuesArgs(valuesFile)).Objects();
        var templates = objects
            .Where(o => Helm.Str(o["kind"]) is "Deployment" or "Job" or "StatefulSet" or "DaemonSet")
            .Select(o => (Name: $"{Helm.Str(o["kind"])}/{Helm.Str(o["metadata"]!["name"])}", Spec: o["spec"]!["template"]!["spec"]!))
            .ToList();
        Assert.NotEmpty(templates);
        foreach (var (name, spec) in templates)
        {
            Assert.True(spec["securityContext"]!["runAsNonRoot"]!.GetValue<bool>(), $"{name}: pod runAsNonRoot");
            Assert.Equal("RuntimeDefault", Helm.Str(spec["securityContext"]!["seccompProfile"]!["type"]));
            Assert.Null(spec["hostNetwork"]);
            Assert.Null(spec["hostPID"]);
            foreach (var container in spec["containers"]!.AsArray().Concat(spec["initContainers"]?.AsArray() ?? []))
            {
                var context = container!["securityContext"]!;
                Assert.True(context["runAsNonRoot"]!.GetValue<bool>(), $"{name}: container runAsNonRoot");
                Assert.False(context["allowPrivilegeEscalation"]!.GetValue<bool>(), $"{name}: allowPrivilegeEscalation");
                Assert.True(context["readOnlyRootFilesystem"]!.GetValue<bool>(), $"{name}: readOnlyRootFilesystem");
                Assert.Equal(["ALL"], ManifestFiles.Strings(context["capabilities"]!["drop"]));
                Assert.Null(context["capabilities"]!["add"]);
                Assert.NotNull(container["resources"]?["requests"]);
                Assert.NotNull(container["resources"]?["limits"]?["memory"]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Helm.ValuesFiles), MemberType = typeof(Helm))]
    public void The_controller_runs_two_replicas_with_leader_election_probes_and_a_disruption_budget(string valuesFile)
    {
        var objects = Helm.Render(Helm.ValuesArgs(valuesFile)).Objects();
        var deployment = Helm.Single(objects, "Deployment", "batchrunner-controller");
        var container = Assert.Single(deployment["spec"]!["template"]!["spec"]!["containers"]!.AsArray())!;
        var env = Env(container);

        Assert.True(deployment["spec"]!["replicas"]!.GetValue<long>() >= 2);
        Assert.Equal("true", Helm.Str(env["BatchRunner__LeaderElection__Enabled"]["value"]));
        Assert.Equal("metadata.namespace", Helm.Str(env["BatchRunner__LeaderElection__Namespace"]["valueFrom"]!["fieldRef"]!["fieldPath"]));
        Assert.Equal("metadata.name", Helm.Str(env["POD_NAME"]["valueFrom"]!["fieldRef"]!["fieldPath"]));
        Assert.Equal("/healthz", Helm.Str(container["livenessProbe"]!["httpGet"]!["path"]));
        Assert.Equal("/readyz", Helm.Str(container["readinessProbe"]!["httpGet"]!["path"]));

        // Leader election may use Leases in the release's namespace only.
        var role = Helm.Single(objects, "Role", "batchrunner-controller-leader-election");
        var rule = Assert.Single(role["rules"]!.AsArray())!;
        Assert.Equal(["leases"], ManifestFiles.Strings(rule["resources"]));

        var budget = Helm.Single(objects, "PodDisruptionBudget", "batchrunner-controller");
        Assert.Equal(1L, budget["spec"]!["minAvailable"]!.GetValue<long>());
        var podLabels = deployment["spec"]!["template"]!["metadata"]!["labels"]!.AsObject();
        foreach (var selector in new[] { budget["spec"]!["selector"]!["matchLabels"]!, Helm.Single(objects, "Service", "batchrunner-controller-metrics")["spec"]!["selector"]! })
        {
            Assert.All(selector.AsObject(), kv => Assert.Equal(Helm.Str(kv.Value), Helm.Str(podLabels[kv.Key])));
        }
    }

    [Fact]
    public void The_eks_values_give_the_controller_its_role_queue_bucket_batch_queue_and_workgroup()
    {
        var objects = Helm.Render(Helm.ValuesArgs("values-eks.yaml")).Objects();

        var account = Helm.Single(objects, "ServiceAccount", "batchrunner-controller");
        Assert.Equal("arn:aws:iam::123456789012:role/batchrunner-controller", Helm.Str(account["metadata"]!["annotations"]!["eks.amazonaws.com/role-arn"]));
        var deployment = Helm.Single(objects, "Deployment", "batchrunner-controller");
        Assert.Equal("batchrunner-controller", Helm.Str(deployment["spec"]!["template"]!["spec"]!["serviceAccountName"]));

        var env = Env(deployment["spec"]!["template"]!["spec"]!["containers"]![0]!);
        var expected = new Dictionary<string, string>
        {
            ["AWS_REGION"] = "eu-west-1",
            ["BatchRunner__Sqs__Enabled"] = "true",
            ["BatchRunner__Sqs__QueueUrl"] = "https://sqs.eu-west-1.amazonaws.com/123456789012/batchrunner-jobs",
            ["BatchRunner__Sqs__Tenants__AllowedNamespaces__1"] = "sweeps",
            ["BatchRunner__AwsBatch__Enabled"] = "true",
            ["BatchRunner__AwsBatch__JobQueue"] = "batchrunner-fargate",
            ["BatchRunner__AwsBatch__ExecutionRoleArn"] = "arn:aws:iam::123456789012:role/batchrunner-batch-execution",
            ["BatchRunner__AwsBatch__JobRoleArn"] = "arn:aws:iam::123456789012:role/batchrunner-batch-job",
            ["BatchRunner__Results__Uri"] = "s3://example-batchrunner-results/results",
            ["BatchRunner__Athena__WorkGroup"] = "batchrunner",
            ["BatchRunner__Athena__OutputLocation"] = "s3://example-batchrunner-results/athena/",
            ["BatchRunner__Logging__Format"] = "json",
        };
        foreach (var (name, value) in expected)
        {
            Assert.True(env.ContainsKey(name), $"{name} is not set");
            Assert.Equal(value, Helm.Str(env[name]["value"]));
        }

        // No AWS keys anywhere: IRSA gives the credentials.
        Assert.DoesNotContain(env.Keys, k => k.StartsWith("AWS_ACCESS_KEY", StringComparison.Ordinal) || k.StartsWith("AWS_SECRET", StringComparison.Ordinal));
        Assert.DoesNotContain(objects, o => Helm.Str(o["kind"]) == "Secret");
    }

    [Fact]
    public void The_minikube_values_run_an_in_cluster_s3_store_the_controller_writes_results_to()
    {
        var objects = Helm.Render(Helm.ValuesArgs("values-minikube.yaml")).Objects();
        var deployment = Helm.Single(objects, "Deployment", "batchrunner-controller");
        var container = deployment["spec"]!["template"]!["spec"]!["containers"]![0]!;
        var env = Env(container);

        Assert.Equal("Never", Helm.Str(container["imagePullPolicy"]));
        Assert.Equal("batchrunner/controller:dev", Helm.Str(container["image"]));
        Assert.Equal("s3://batchrunner/results", Helm.Str(env["BatchRunner__Results__Uri"]["value"]));
        Assert.Equal("true", Helm.Str(env["BatchRunner__Results__ForcePathStyle"]["value"]));
        var endpoint = new Uri(Helm.Str(env["BatchRunner__Results__EndpointUrl"]["value"])!);
        Assert.Equal($"batchrunner-s3.{Helm.Namespace}.svc", endpoint.Host);
        Assert.DoesNotContain(env.Keys, k => k.StartsWith("BatchRunner__AwsBatch", StringComparison.Ordinal) || k.StartsWith("BatchRunner__Sqs", StringComparison.Ordinal));

        // The endpoint is the store's Service, whose selector picks the store's pods, on the port it listens on.
        var service = Helm.Single(objects, "Service", "batchrunner-s3");
        Assert.Equal(endpoint.Port, service["spec"]!["ports"]![0]!["port"]!.GetValue<long>());
        var store = Helm.Single(objects, "Deployment", "batchrunner-s3");
        var storeLabels = store["spec"]!["template"]!["metadata"]!["labels"]!.AsObject();
        Assert.All(service["spec"]!["selector"]!.AsObject(), kv => Assert.Equal(Helm.Str(kv.Value), Helm.Str(storeLabels[kv.Key])));
        Assert.Equal("batchrunner-s3", Helm.Str(store["spec"]!["template"]!["spec"]!["volumes"]![0]!["persistentVolumeClaim"]!["claimName"]));
        var claim = Helm.Single(objects, "PersistentVolumeClaim", "batchrunner-s3");
        Assert.Equal("keep", Helm.Str(claim["metadata"]!["annotations"]!["helm.sh/resource-policy"])); // results outlive helm uninstall

        // The controller reads the store's credentials from the store's Secret, which holds both keys.
        var secret = Helm.Single(objects, "Secret", "batchrunner-s3");
        foreach (var name in new[] { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY" })
        {
            var reference = env[name]["valueFrom"]!["secretKeyRef"]!;
            Assert.Equal("batchrunner-s3", Helm.Str(reference["name"]));
            Assert.NotNull(secret["stringData"]![Helm.Str(reference["key"])!]);
        }

        // A hook creates the bucket the results URI names.
        var job = Helm.Single(objects, "Job", "batchrunner-s3-bucket");
        Assert.Equal("post-install,post-upgrade", Helm.Str(job["metadata"]!["annotations"]!["helm.sh/hook"]));
        var jobEnv = Env(job["spec"]!["template"]!["spec"]!["containers"]![0]!);
        Assert.Equal("batchrunner", Helm.Str(jobEnv["BUCKET"]["value"]));
        Assert.Equal(endpoint.ToString().TrimEnd('/'), Helm.Str(jobEnv["ENDPOINT"]["value"]));
    }

    [Fact]
    public void The_disruption_budget_uses_the_api_version_the_cluster_serves()
    {
        static string? BudgetVersion(string kubeVersion) =>
            Helm.Str(Helm.Single(Helm.Render("--kube-version", kubeVersion).Objects(), "PodDisruptionBudget", "batchrunner-controller")["apiVersion"]);

        Assert.Equal("policy/v1beta1", BudgetVersion("1.20.2"));
        Assert.Equal("policy/v1", BudgetVersion("1.21.0"));
        Assert.Equal("policy/v1", BudgetVersion("1.31.0"));

        var tooOld = Helm.Render("--kube-version", "1.19.9");
        Assert.Equal(1, tooOld.ExitCode);
        Assert.Contains("chart requires kubeVersion: >=1.20.0-0 which is incompatible with Kubernetes v1.19.9", tooOld.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Optional_parts_can_be_switched_off_and_the_service_monitor_on()
    {
        var lean = Helm.Render("--set", "podDisruptionBudget.enabled=false,metrics.service.enabled=false,rbac.create=false,serviceAccount.create=false,serviceAccount.name=existing").Objects();
        Assert.Equal(["Deployment"], lean.Select(o => Helm.Str(o["kind"])!));
        Assert.Equal("existing", Helm.Str(lean[0]["spec"]!["template"]!["spec"]!["serviceAccountName"]));

        var monitored = Helm.Render("--set", "metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.labels.release=prometheus").Objects();
        var monitor = Helm.Single(monitored, "ServiceMonitor", "batchrunner-controller");
        Assert.Equal("monitoring.coreos.com/v1", Helm.Str(monitor["apiVersion"]));
        Assert.Equal("prometheus", Helm.Str(monitor["metadata"]!["labels"]!["release"]));
        var endpoint = Assert.Single(monitor["spec"]!["endpoints"]!.AsArray())!;
        Assert.Equal(("http", "/metrics"), (Helm.Str(endpoint["port"]), Helm.Str(endpoint["path"])));
        var service = Helm.Single(monitored, "Service", "batchrunner-controller-metrics");
        Assert.Equal("http", Helm.Str(service["spec"]!["ports"]![0]!["name"]));
    }

    [Fact]
    public void A_second_release_gets_its_own_cluster_wide_names()
    {
        var objects = Helm.RenderChart(Helm.ChartPath, "--release-name", "team-a", "--namespace", "team-a").Objects();

        Assert.Contains(objects, o => Helm.Str(o["kind"]) == "ClusterRole" && Helm.Str(o["metadata"]!["name"]) == "team-a-batchrunner-controller");
        var binding = Helm.Single(objects, "ClusterRoleBinding", "team-a-batchrunner-controller");
        Assert.Equal("team-a", Helm.Str(binding["subjects"]![0]!["namespace"]));
        Assert.Equal("team-a-batchrunner-controller", Helm.Str(binding["subjects"]![0]!["name"]));
    }

    [Fact]
    public void The_notes_say_how_to_follow_the_controller_and_where_results_go()
    {
        var notes = Helm.Render([.. Helm.ValuesArgs("values-minikube.yaml"), "--notes"]);

        Assert.Equal(0, notes.ExitCode);
        Assert.Contains("kubectl -n batchrunner-system rollout status deployment/batchrunner-controller", notes.Output, StringComparison.Ordinal);
        Assert.Contains("Results land in s3://batchrunner/results", notes.Output, StringComparison.Ordinal);
        Assert.Contains("port-forward service/batchrunner-s3 9000", notes.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("apiVersion:", notes.Output, StringComparison.Ordinal);
    }

    internal static Dictionary<string, JsonNode> Env(JsonNode container) =>
        container["env"]!.AsArray().ToDictionary(e => Helm.Str(e!["name"])!, e => e!);
}
