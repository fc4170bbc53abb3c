using System.Text.Json.Nodes;

namespace BatchRunner.Manifests.Tests;

/// <summary>The controller's permissions: exactly what it needs, named one by one.</summary>
public class RbacTests
{
    private static readonly IReadOnlyList<JsonObject> Objects = Manifests.Installable();

    private static IEnumerable<JsonObject> Roles => Objects.Where(o => Manifests.Str(o["kind"]) is "Role" or "ClusterRole");

    [Fact]
    public void Rbac_rules_use_no_wildcards()
    {
        Assert.NotEmpty(Roles);
        foreach (var role in Roles)
        {
            foreach (var rule in role["rules"]!.AsArray())
            {
                foreach (var key in new[] { "apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs" })
                {
                    Assert.DoesNotContain(Manifests.Strings(rule![key]), v => v.Contains('*', StringComparison.Ordinal));
                }
            }

            Assert.Null(role["aggregationRule"]);
        }
    }

    [Fact]
    public void The_cluster_role_grants_exactly_what_the_controller_needs()
    {
        var role = Manifests.Single(Objects, "ClusterRole", Manifests.ControllerName);

        Assert.Equal(
            Permissions(
                ("batchrunner.io", "batchjobs", "get list watch create patch"),
                ("batchrunner.io", "batchjobs/status", "get patch"),
                ("batchrunner.io", "batchjobs/finalizers", "update"),
                ("batchrunner.io", "queues", "get list watch"),
                ("batchrunner.io", "queues/status", "get patch"),
                ("batch", "jobs", "get list watch create patch delete"),
                ("", "configmaps", "get list create delete"),
                ("", "pods", "list"),
                ("", "events", "create patch"),
                ("events.k8s.io", "events", "create patch")),
            Granted(role));
    }

    [Fact]
    public void Leader_election_may_only_use_leases_in_the_controller_namespace()
    {
        var roles = Roles.Where(r => Manifests.Str(r["kind"]) == "Role").ToList();
        var role = Assert.Single(roles);

        Assert.Equal(Manifests.ControllerNamespace, Manifests.Str(role["metadata"]!["namespace"]));
        Assert.Equal(Permissions(("coordination.k8s.io", "leases", "get create update")), Granted(role));
    }

    [Fact]
    public void The_bindings_give_the_roles_to_the_service_account_the_controller_runs_as()
    {
        var account = Manifests.Single(Objects, "ServiceAccount", Manifests.ControllerName);
        Assert.Equal(Manifests.ControllerNamespace, Manifests.Str(account["metadata"]!["namespace"]));
        var deployment = Manifests.Single(Objects, "Deployment", Manifests.ControllerName);
        Assert.Equal(Manifests.ControllerName, Manifests.Str(deployment["spec"]!["template"]!["spec"]!["serviceAccountName"]));

        var bindings = Objects.Where(o => Manifests.Str(o["kind"]) is "RoleBinding" or "ClusterRoleBinding").ToList();
        Assert.Equal(2, bindings.Count);
        foreach (var binding in bindings)
        {
            var roleKind = Manifests.Str(binding["kind"]) == "RoleBinding" ? "Role" : "ClusterRole";
            var roleRef = binding["roleRef"]!;
            Assert.Equal((roleKind, "rbac.authorization.k8s.io"), (Manifests.Str(roleRef["kind"]), Manifests.Str(roleRef["apiGroup"])));
            var role = Manifests.Single(Objects, roleKind, Manifests.Str(roleRef["name"])!);
            Assert.Equal(Manifests.Str(role["metadata"]!["namespace"]), Manifests.Str(binding["metadata"]!["namespace"]));

            var subject = Assert.Single(binding["subjects"]!.AsArray())!;
            Assert.Equal(
                ("ServiceAccount", Manifests.ControllerName, Manifests.ControllerNamespace),
                (Manifests.Str(subject["kind"]), Manifests.Str(subject["name"]), Manifests.Str(subject["namespace"])));
        }
    }

    private static SortedSet<string> Permissions(params (string Group, string Resource, string Verbs)[] rules) =>
        new(rules.SelectMany(r => r.Verbs.Split(' ').Select(v => $"{r.Group}/{r.Resource}:{v}")), StringComparer.Ordinal);

    /// <summary>Every (group, resource, verb) a role grants, whatever way its rules are split.</summary>
    private static SortedSet<string> Granted(JsonObject role) =>
        new(role["rules"]!.AsArray().SelectMany(rule =>
            from g in Manifests.Strings(rule!["apiGroups"])
            from r in Manifests.Strings(rule["resources"])
            from v in Manifests.Strings(rule["verbs"])
            select $"{g}/{r}:{v}"), StringComparer.Ordinal);
}
