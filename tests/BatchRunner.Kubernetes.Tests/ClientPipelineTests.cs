using System.Text;
using BatchRunner.Kubernetes.Client;

namespace BatchRunner.Kubernetes.Tests;

public sealed class ClientPipelineTests
{
    public static TheoryData<string, string?> Answers => new()
    {
        // What the API server answers a write that asked for metadata alone.
        { """{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"sweep","namespace":"lab","resourceVersion":"4711","managedFields":[{"manager":"x"}]}}""", "4711" },
        // A server that answers the whole object (the second choice): metadata after a spec that has a version of its own.
        { """{"kind":"BatchJob","spec":{"resourceVersion":"spec","metadata":{"resourceVersion":"nested"}},"metadata":{"labels":{"resourceVersion":"label"},"resourceVersion":"12"},"status":{}}""", "12" },
        { """{"kind":"Status","apiVersion":"v1","status":"Success"}""", null },
        { """{"metadata":{"name":"sweep"}}""", null },
        { """{"metadata":{"resourceVersion":12}}""", null },
        { """{"metadata":"resourceVersion"}""", null },
        { """["metadata",{"resourceVersion":"1"}]""", null },
    };

    [Theory]
    [MemberData(nameof(Answers))]
    public void The_version_of_a_write_is_read_from_the_answers_own_metadata(string answer, string? version) =>
        Assert.Equal(version, ClientPipeline.ResourceVersionOf(Encoding.UTF8.GetBytes(answer)));

    [Fact]
    public void A_write_read_for_its_metadata_asks_for_that_first_and_the_whole_object_only_as_a_fallback()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://127.0.0.1/apis/batch/v1/namespaces/lab/jobs");
        ClientPipeline.AcceptMetadataOnly(request);

        Assert.Equal("application/json; as=PartialObjectMetadata; g=meta.k8s.io; v=v1, application/json; q=0.9", request.Headers.Accept.ToString());
    }
}
