using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Controller.Intake;
using k8s;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
// ASP.NET's Results, by another name: the linked Results.Tests helpers bring a BatchRunner.Results namespace.
using HttpResults = Microsoft.AspNetCore.Http.Results;

namespace BatchRunner.Aws.Tests;

/// <summary>
/// The Kubernetes sink against a stand-in for the API server's BatchJob endpoints (create, get; 409 on a taken
/// name, 422 on a name it calls invalid, 500 when told to fail). The real API server is the integration tier's.
/// </summary>
public sealed class KubernetesJobSinkTests : IAsyncLifetime, IDisposable
{
    private readonly ConcurrentDictionary<string, JsonObject> _objects = new(StringComparer.Ordinal);
    private WebApplication? _api;
    private IKubernetes? _client;
    private volatile bool _failing;

    private KubernetesJobSink Sink => new(_client!);

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _api = builder.Build();
        const string collection = "/apis/batchrunner.io/v1alpha1/namespaces/{ns}/batchjobs";
        _api.MapPost(collection, async (string ns, HttpRequest request) =>
        {
            if (_failing)
            {
                return HttpResults.Json(Status(500, "InternalError", "etcdserver: request timed out"), statusCode: 500);
            }

            var body = (await JsonNode.ParseAsync(request.Body))!.AsObject();
            var name = body["metadata"]!["name"]!.GetValue<string>();
            if (name == "refused-by-schema")
            {
                return HttpResults.Json(Status(422, "Invalid", "BatchJob.batchrunner.io \"refused-by-schema\" is invalid: spec.command: Required value"), statusCode: 422);
            }

            body["metadata"]!["creationTimestamp"] = "2026-07-01T00:00:00Z";
            return _objects.TryAdd($"{ns}/{name}", body)
                ? HttpResults.Json(body, statusCode: 201)
                : HttpResults.Json(Status(409, "AlreadyExists", $"batchjobs.batchrunner.io \"{name}\" already exists"), statusCode: 409);
        });
        _api.MapGet(collection + "/{name}", (string ns, string name) =>
            _objects.TryGetValue($"{ns}/{name}", out var found) ? HttpResults.Json(found) : HttpResults.Json(Status(404, "NotFound", "not found"), statusCode: 404));
        await _api.StartAsync();
        var url = _api.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _client = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = url });
    }

    private static JsonObject Status(int code, string reason, string message) => new()
    {
        ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Failure", ["code"] = code, ["reason"] = reason, ["message"] = message,
    };

    private static JobRequest Request(string name, string script = "true", string messageId = "m-1")
    {
        var request = IntakeRequestReader.Read(Specs.Yaml(name, ns: "team-a", script: script, extraSpec: "backend: kubernetes\n  image: registry.test/sim:1"), null, null).Request!;
        return new JobRequest(request.Job, request.Document, request.ContentHash, messageId);
    }

    [Fact]
    public async Task It_creates_the_batch_job_once_and_tells_a_redelivery_from_a_name_collision()
    {
        var first = Request("sweep");

        Assert.Equal(SinkOutcome.Created, (await Sink.RecordAsync(first, default)).Outcome);
        Assert.Equal(SinkOutcome.AlreadyRecorded, (await Sink.RecordAsync(first with { MessageId = "m-2" }, default)).Outcome);
        var collision = await Sink.RecordAsync(Request("sweep", script: "exit 1"), default);

        Assert.Equal(SinkOutcome.Collision, collision.Outcome);
        Assert.Contains("team-a/sweep already exists with different content", collision.Reason, StringComparison.Ordinal);
        var stored = Assert.Single(_objects.Values);
        var annotations = stored["metadata"]!["annotations"]!;
        Assert.Equal(first.ContentHash, annotations[KubernetesJobSink.ContentHashAnnotation]!.GetValue<string>());
        Assert.Equal("m-1", annotations[KubernetesJobSink.MessageIdAnnotation]!.GetValue<string>());
        Assert.Equal("registry.test/sim:1", stored["spec"]!["image"]!.GetValue<string>());
        Assert.Equal("kubernetes", stored["spec"]!["backend"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_batch_job_made_by_someone_else_is_a_collision()
    {
        _objects["team-a/handmade"] = new JsonObject { ["metadata"] = new JsonObject { ["name"] = "handmade", ["namespace"] = "team-a" } };

        var result = await Sink.RecordAsync(Request("handmade"), default);

        Assert.Equal(SinkOutcome.Collision, result.Outcome);
        Assert.Contains("created otherwise than by this queue", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task What_the_api_server_refuses_as_invalid_is_refused_and_a_server_error_is_thrown_for_a_retry()
    {
        var refused = await Sink.RecordAsync(Request("refused-by-schema"), default);
        Assert.Equal(SinkOutcome.Refused, refused.Outcome);
        Assert.Contains("spec.command: Required value", refused.Reason, StringComparison.Ordinal);

        _failing = true;
        await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() => Sink.RecordAsync(Request("later"), default));
        Assert.False(_objects.ContainsKey("team-a/later"));
    }

    public void Dispose() => _client?.Dispose();

    public async Task DisposeAsync()
    {
        if (_api is not null)
        {
            await _api.DisposeAsync();
        }
    }
}
