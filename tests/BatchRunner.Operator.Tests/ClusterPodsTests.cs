using System.Text.Json.Nodes;
using BatchRunner.Cli.Commands;
using Xunit;

namespace BatchRunner.Operator.Tests;

/// <summary>Which index a pod of a BatchJob runs, from what <c>kubectl get pods -o json</c> shows, as a table.</summary>
public sealed class ClusterPodsTests
{
    private static JsonObject Pod(string name, string? position, string created, string? listed = null, string phase = "Running") => new()
    {
        ["metadata"] = new JsonObject
        {
            ["name"] = name,
            ["creationTimestamp"] = created,
            ["annotations"] = position is null ? new JsonObject() : new JsonObject { ["batch.kubernetes.io/job-completion-index"] = position },
        },
        ["spec"] = new JsonObject
        {
            ["containers"] = new JsonArray(new JsonObject
            {
                ["name"] = "index",
                ["env"] = listed is null ? new JsonArray() : new JsonArray(new JsonObject { ["name"] = "BATCHRUNNER_INDEXES", ["value"] = listed }),
            }),
        },
        ["status"] = new JsonObject { ["phase"] = phase },
    };

    private static JsonObject List(params JsonObject[] pods) => new() { ["items"] = new JsonArray(pods) };

    [Fact]
    public void A_pod_of_the_main_job_runs_the_index_its_completion_index_names()
    {
        var pods = ClusterPods.OfIndex(List(Pod("a", "0", "2026-12-05T10:00:00Z"), Pod("b", "3", "2026-12-05T10:00:01Z")), 3);

        Assert.Equal(("b", "index", 3, "Running"), (Assert.Single(pods).Name, pods[0].Container, pods[0].Index, pods[0].Phase));
    }

    [Fact]
    public void A_pod_of_a_job_that_runs_a_list_runs_the_index_at_its_position_in_the_list()
    {
        var listed = List(Pod("r0", "0", "2026-12-05T10:00:00Z", "4,7-9"), Pod("r2", "2", "2026-12-05T10:00:00Z", "4,7-9"), Pod("beyond", "9", "2026-12-05T10:00:00Z", "4,7-9"));

        Assert.Equal(["r2"], ClusterPods.OfIndex(listed, 8).Select(p => p.Name));
        Assert.Equal(["r0"], ClusterPods.OfIndex(listed, 4).Select(p => p.Name));
        Assert.Empty(ClusterPods.OfIndex(listed, 9));
    }

    [Fact]
    public void The_pods_of_one_index_are_its_attempts_oldest_first_and_pods_without_an_index_are_left_out()
    {
        var pods = ClusterPods.OfIndex(List(
            Pod("second", "1", "2026-12-05T10:05:00Z"), Pod("first", "1", "2026-12-05T10:00:00Z", phase: "Failed"),
            Pod("no-index", null, "2026-12-05T09:00:00Z"), Pod("bad-index", "x", "2026-12-05T09:00:00Z")), 1);

        Assert.Equal(["first", "second"], pods.Select(p => p.Name));
    }

    [Fact]
    public void A_list_with_no_items_or_items_that_are_not_pods_gives_no_pods() =>
        Assert.Empty(ClusterPods.OfIndex(new JsonObject { ["items"] = new JsonArray(1, "x", new JsonObject()) }, 0));
}
