using System.Text.Json;
using BatchRunner.Controller.Dashboard;
using BatchRunner.Kubernetes.Client;
using k8s.Models;

namespace BatchRunner.Dashboard.Tests;

public sealed class ClusterViewsTests
{
    private static BatchJobObject BatchJob(string spec, string? status) => new()
    {
        Metadata = new V1ObjectMeta { Name = "sweep", NamespaceProperty = "team-a", CreationTimestamp = new DateTime(2026, 12, 1, 12, 0, 0, DateTimeKind.Utc) },
        Spec = JsonDocument.Parse(spec).RootElement,
        Status = status is null ? null : JsonDocument.Parse(status).RootElement,
    };

    private const string Spec = """
        {"image": "registry.example/sim:1", "backend": "kubernetes", "queue": "research", "command": ["run", "--token=hunter2"],
         "env": [{"name": "API_TOKEN", "value": "s3cr3t-value"}]}
        """;

    [Fact]
    public void A_waiting_batchjob_shows_its_queue_place_reason_and_estimate_from_its_status()
    {
        var view = ClusterViews.Of(BatchJob(Spec, """
            {"phase": "Pending", "runId": "r-1", "total": 12, "succeeded": 0, "failed": 0, "active": 0,
             "queue": {"name": "research", "allowance": 0, "wanted": 4, "position": 2, "reason": "QuotaExhausted", "eta": "12:05 (12:20)"},
             "conditions": [{"type": "Admitted", "status": "False", "reason": "QuotaExhausted", "message": "2 BatchJobs ahead use the quota", "lastTransitionTime": "2026-12-01T12:00:05Z"}]}
            """));
        Assert.Equal(("team-a", "sweep", "Pending", 12, "research", 2), (view.Namespace, view.Name, view.Phase, view.Total, view.Queue, view.Position));
        Assert.Equal(("QuotaExhausted", "2 BatchJobs ahead use the quota", "12:05 (12:20)", 4), (view.WaitReason, view.WaitMessage, view.Eta, view.Wanted));
        Assert.True(view.IsWaiting);
        Assert.Equal(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero), view.Created);
        Assert.Equal("Admitted", Assert.Single(view.Conditions).Type);
    }

    [Fact]
    public void A_split_run_shows_each_backends_share_and_its_failed_indexes()
    {
        var view = ClusterViews.Of(BatchJob(Spec, """
            {"phase": "Running", "total": 10, "succeeded": 6, "failed": 1, "active": 3, "failedIndexes": "4", "failedIndexesTruncated": true,
             "backends": [{"name": "kubernetes", "indexes": "0-5", "parallelism": 2, "phase": "Succeeded", "succeeded": 5, "failed": 1},
                          {"name": "aws-batch", "indexes": "6-9", "parallelism": 4, "succeeded": 1, "active": 3}]}
            """));
        Assert.Equal((7, "4", true), (view.Done, view.FailedIndexes, view.FailedIndexesTruncated));
        Assert.Equal(["kubernetes 0-5 Succeeded", "aws-batch 6-9 Pending"], view.Backends.Select(b => $"{b.Name} {b.Indexes} {b.Phase}"));
        Assert.False(view.IsWaiting);
    }

    [Fact]
    public void A_batchjob_without_status_is_pending_and_its_queue_is_the_specs()
    {
        var view = ClusterViews.Of(BatchJob(Spec, null));
        Assert.Equal(("Pending", "research", "registry.example/sim:1", "kubernetes", 0), (view.Phase, view.Queue, view.Image, view.Backend, view.Total));
    }

    [Fact]
    public void A_status_it_cannot_read_is_shown_as_unknown_with_why()
    {
        var view = ClusterViews.Of(BatchJob(Spec, """{"phase": "Exploded", "total": "many"}"""));
        Assert.Equal("Unknown", view.Phase);
        Assert.Equal("Unreadable", Assert.Single(view.Conditions).Reason);
    }

    [Fact]
    public void Nothing_of_the_spec_but_image_backend_and_queue_reaches_the_view()
    {
        var view = ClusterViews.Of(BatchJob(Spec, """{"phase": "Running"}"""));
        var shown = JsonSerializer.Serialize(view);
        Assert.DoesNotContain("s3cr3t-value", shown, StringComparison.Ordinal);
        Assert.DoesNotContain("API_TOKEN", shown, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", shown, StringComparison.Ordinal);
    }

    [Fact]
    public void A_queue_shows_its_holdings_validity_and_tenants()
    {
        var queue = ClusterViews.Of(new QueueObject
        {
            Metadata = new V1ObjectMeta { Name = "research" },
            Spec = JsonDocument.Parse("""{"backends": ["kubernetes", "aws-batch"]}""").RootElement,
            Status = JsonDocument.Parse("""
                {"pendingIndexes": 10, "admittedIndexes": 8, "waitingBatchJobs": 2, "usage": "kubernetes 8/8 indexes",
                 "conditions": [{"type": "Valid", "status": "False", "message": "quotas: kubernetes: indexes must be > 0"}],
                 "tenants": [{"name": "team-a", "weight": 2, "share": 0.6667, "usageShareSeconds": 120.5, "admittedIndexes": 6, "pendingIndexes": 2}, "junk"]}
                """).RootElement,
        });
        Assert.Equal(("research", "kubernetes,aws-batch", 10, 8, 2, "kubernetes 8/8 indexes"), (queue.Name, queue.Backends, queue.Pending, queue.Admitted, queue.Waiting, queue.Usage));
        Assert.Equal((false, "quotas: kubernetes: indexes must be > 0"), (queue.Valid, queue.Message));
        Assert.Equal(new TenantView("team-a", 2, 0.6667, 120.5, 6, 2), Assert.Single(queue.Tenants));
    }

    [Fact]
    public void A_queue_without_status_is_valid_and_empty()
    {
        var queue = ClusterViews.Of(new QueueObject { Metadata = new V1ObjectMeta { Name = "q" }, Spec = JsonDocument.Parse("""{"backends": ["local"]}""").RootElement });
        Assert.Equal(("local", true, 0, 0), (queue.Backends, queue.Valid, queue.Pending, queue.Tenants.Count));
    }
}
