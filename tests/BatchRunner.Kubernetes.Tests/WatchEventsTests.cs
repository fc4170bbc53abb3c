using System.Net;
using System.Text;
using System.Text.Json;
using BatchRunner.Kubernetes.Client;
using k8s;
using k8s.Models;

namespace BatchRunner.Kubernetes.Tests;

public sealed class WatchEventsTests
{
    /// <summary>A Job's event as the API server writes it: two field managers, a status, a quantity, a time.</summary>
    private const string JobEvent = """
        {"type":"MODIFIED","object":{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"sweep-r1","namespace":"lab",
        "uid":"6f1c","resourceVersion":"4711","generation":1,"creationTimestamp":"2026-12-07T08:00:00Z",
        "labels":{"app.kubernetes.io/managed-by":"batchrunner","batchrunner.io/batchjob":"sweep"},
        "ownerReferences":[{"apiVersion":"batchrunner.io/v1alpha1","kind":"BatchJob","name":"sweep","uid":"a1","controller":true,"blockOwnerDeletion":true}],
        "managedFields":[{"manager":"batchrunner","operation":"Update","apiVersion":"batch/v1","time":"2026-12-07T08:00:00Z","fieldsType":"FieldsV1",
          "fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:batchrunner.io/batchjob":{}}},"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"workload\"}":{".":{},"f:image":{}}}}}}}},
          {"manager":"kube-controller-manager","operation":"Update","apiVersion":"batch/v1","time":"2026-12-07T08:00:01Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:active":{},"f:startTime":{}}}}]},
        "spec":{"parallelism":2,"completions":4,"backoffLimit":0,"template":{"metadata":{"labels":{"batchrunner.io/batchjob":"sweep"}},
          "spec":{"restartPolicy":"Never","containers":[{"name":"workload","image":"busybox:1.36","command":["/bin/true"],
          "resources":{"limits":{"cpu":"500m","memory":"1Gi"}}}]}}},
        "status":{"startTime":"2026-12-07T08:00:01Z","active":2}}}
        """;

    [Fact]
    public void A_job_event_decodes_whole_but_for_its_managed_fields()
    {
        var (type, job) = WatchEvents.Decode<V1Job>(Line(JobEvent));

        Assert.Equal(WatchEventType.Modified, type);
        Assert.Null(job.Metadata.ManagedFields);
        Assert.Equal(("sweep-r1", "lab", "4711"), (job.Metadata.Name, job.Metadata.NamespaceProperty, job.Metadata.ResourceVersion));
        Assert.Equal("sweep", job.Metadata.Labels["batchrunner.io/batchjob"]);
        Assert.Equal("sweep", Assert.Single(job.Metadata.OwnerReferences).Name);
        var container = Assert.Single(job.Spec.Template.Spec.Containers);
        Assert.Equal(("busybox:1.36", "/bin/true"), (container.Image, Assert.Single(container.Command)));
        Assert.Equal("500m", container.Resources.Limits["cpu"].ToString());
        Assert.Equal((2, 4), (job.Spec.Parallelism, job.Spec.Completions));
        Assert.Equal(2, job.Status.Active);
        Assert.Equal(new DateTime(2026, 12, 7, 8, 0, 1, DateTimeKind.Utc), job.Status.StartTime);
    }

    [Fact]
    public void A_job_decodes_as_the_library_decodes_it_apart_from_managed_fields()
    {
        var library = KubernetesJson.Deserialize<V1Job>(JsonDocument.Parse(JobEvent).RootElement.GetProperty("object").GetRawText());
        Assert.Equal(2, library.Metadata.ManagedFields.Count);
        library.Metadata.ManagedFields = null;

        var (_, ours) = WatchEvents.Decode<V1Job>(Line(JobEvent));

        Assert.Equal(KubernetesJson.Serialize(library), KubernetesJson.Serialize(ours));
    }

    [Fact]
    public void A_custom_object_event_keeps_its_spec_and_status_as_written()
    {
        var line = """{"type":"ADDED","object":{"apiVersion":"batchrunner.io/v1alpha1","kind":"BatchJob","metadata":{"name":"sweep","namespace":"lab","resourceVersion":"9","managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{}}}]},"spec":{"image":"busybox:1.36","completions":4,"sweep":{"grid":{"rate":[0.5,0.9]}}},"status":{"phase":"Running"}}}""";

        var (type, batchJob) = WatchEvents.Decode<BatchJobObject>(Line(line));

        Assert.Equal(WatchEventType.Added, type);
        Assert.Equal("lab/sweep", batchJob.Key);
        Assert.Null(batchJob.Metadata.ManagedFields);
        Assert.Equal("""{"image":"busybox:1.36","completions":4,"sweep":{"grid":{"rate":[0.5,0.9]}}}""", batchJob.Spec!.Value.GetRawText());
        Assert.Equal("Running", batchJob.Status!.Value.GetProperty("phase").GetString());
    }

    [Fact]
    public void An_error_event_throws_the_servers_status_as_the_library_does()
    {
        var line = """{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (4711)","reason":"Expired","code":410}}""";

        var thrown = Assert.Throws<KubernetesException>(() => WatchEvents.Decode<V1Job>(Line(line)));

        Assert.Equal((int)HttpStatusCode.Gone, thrown.Status.Code);
        Assert.Equal("Expired", thrown.Status.Reason);
    }

    [Fact]
    public void A_bookmark_carries_the_resource_version_to_resume_from()
    {
        var (type, job) = WatchEvents.Decode<V1Job>(Line("""{"type":"BOOKMARK","object":{"kind":"Job","apiVersion":"batch/v1","metadata":{"resourceVersion":"12345"},"spec":{"template":{}},"status":{}}}"""));

        Assert.Equal(WatchEventType.Bookmark, type);
        Assert.Equal("12345", job.Metadata.ResourceVersion);
    }

    [Fact]
    public void The_type_may_follow_the_object()
    {
        var (type, job) = WatchEvents.Decode<V1Job>(Line("""{"object":{"metadata":{"name":"late","namespace":"lab"}},"type":"DELETED"}"""));

        Assert.Equal((WatchEventType.Deleted, "late"), (type, job.Metadata.Name));
    }

    [Theory]
    [InlineData("""[1,2]""", "not a JSON object")]
    [InlineData("""{"object":{"metadata":{}}}""", "without a type")]
    [InlineData("""{"type":"RENAMED","object":{"metadata":{}}}""", "unknown type \"RENAMED\"")]
    [InlineData("""{"type":7,"object":{"metadata":{}}}""", "type is not a string")]
    [InlineData("""{"type":"ADDED"}""", "without an object")]
    [InlineData("""{"type":"ADDED","object":null}""", "object is null")]
    public void A_malformed_event_is_an_error_naming_what_is_wrong(string line, string named)
    {
        var thrown = Assert.ThrowsAny<JsonException>(() => WatchEvents.Decode<V1Job>(Line(line)));

        Assert.Contains(named, thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cut_event_is_a_json_error()
    {
        Assert.ThrowsAny<JsonException>(() => WatchEvents.Decode<V1Job>(Line(JobEvent[..(JobEvent.Length / 2)])));
    }

    private static byte[] Line(string json) => Encoding.UTF8.GetBytes(json.ReplaceLineEndings(""));
}
