using System.Collections.Concurrent;
using System.Text.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Kubernetes;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using BatchRunner.Kubernetes.Testing;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// The controller's writes whose answer it reads for a version at most (Job creates, status writes, Events) ask the real API
/// server for the written object's metadata alone, as the controller's ServiceAccount, and still do what they did.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class ClusterWriteTests(OperatorFixture fixture)
{
    [Fact]
    public async Task Job_creates_status_writes_and_events_get_the_metadata_alone_back_and_still_write_the_whole_object()
    {
        var ns = "cw-" + Guid.NewGuid().ToString("N")[..10];
        await fixture.ControlPlane.CreateNamespaceAsync(ns);
        var answers = new AnswerKinds();
        using var controller = new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(fixture.ControllerKubeconfig), answers);
        var api = new KubernetesClusterApi(
            controller,
            new Informer<BatchJobObject>("batchjobs", new CustomObjectListWatch<BatchJobObject, BatchJobObjectList>(controller, BatchJobResource.Plural), NullLogger.Instance, TimeProvider.System),
            new Informer<V1Job>("jobs", new ManagedJobListWatch(controller), NullLogger.Instance, TimeProvider.System),
            ClusterCapabilities.FromVersion("1", "20"), "batchrunner-controller", TimeProvider.System);

        // A Job: created whole, answered with its metadata; created again, a conflict as before.
        Assert.True(await api.CreateJobAsync(Job(ns, "created"), CancellationToken.None));
        Assert.Equal("PartialObjectMetadata", answers.Of(HttpMethod.Post, $"/apis/batch/v1/namespaces/{ns}/jobs"));
        var stored = await fixture.Admin.BatchV1.ReadNamespacedJobAsync("created", ns);
        Assert.Equal("busybox:1.36", Assert.Single(stored.Spec.Template.Spec.Containers).Image);
        Assert.False(await api.CreateJobAsync(Job(ns, "created"), CancellationToken.None));

        // A status write: answered with the metadata, whose version is known as this controller's write afterwards.
        await fixture.ApplyAsync(Cluster.BatchJobYaml(ns, "sweep"));
        var batchJob = await ReadAsync(controller, ns, "sweep");
        await api.PatchStatusAsync(batchJob, new BatchJobStatus { Phase = RunPhase.Pending, Total = 6, ObservedGeneration = 1 }, CancellationToken.None);
        Assert.Equal("PartialObjectMetadata", answers.Of(HttpMethod.Patch, $"/apis/batchrunner.io/v1alpha1/namespaces/{ns}/batchjobs/sweep/status"));
        var written = await ReadAsync(controller, ns, "sweep");
        Assert.Equal((RunPhase.Pending, 6), (BatchJobStatus.FromJson(written.Status).Phase, BatchJobStatus.FromJson(written.Status).Total));
        Assert.True(api.IsOwnStatusWrite(written), "the version the write made is known as the controller's own");
        Assert.False(api.IsOwnStatusWrite(batchJob), "the version before it is not");

        // An Event: written apart from the work, answered with its metadata too.
        using var stop = new CancellationTokenSource();
        var events = api.SendEventsAsync(stop.Token);
        await api.RecordEventAsync(written, "Normal", "Dispatched", "created Job sweep-r1", CancellationToken.None);
        var eventsPath = $"/api/v1/namespaces/{ns}/events";
        // Until its answer is read, too: stopping the sender earlier could cut the answer off.
        await Eventually.TrueAsync(
            async () => answers.Has(HttpMethod.Post, eventsPath)
                && (await fixture.Admin.CoreV1.ListNamespacedEventAsync(ns)).Items.Any(e => e.Reason == "Dispatched" && e.InvolvedObject.Name == "sweep"),
            TimeSpan.FromSeconds(30), "the Event is written and its answer read");
        await stop.CancelAsync();
        await events;
        Assert.Equal("PartialObjectMetadata", answers.Of(HttpMethod.Post, eventsPath));

        // A status somebody else writes is not the controller's.
        await fixture.Admin.CustomObjects.PatchNamespacedCustomObjectStatusAsync(
            new V1Patch("""{"status":{"phase":"Running"}}""", V1Patch.PatchType.MergePatch), BatchJobResource.Group, BatchJobResource.Version, ns, BatchJobResource.Plural, "sweep");
        Assert.False(api.IsOwnStatusWrite(await ReadAsync(controller, ns, "sweep")));
    }

    private static Task<BatchJobObject> ReadAsync(IKubernetes client, string ns, string name) =>
        client.CustomObjects.GetNamespacedCustomObjectAsync<BatchJobObject>(BatchJobResource.Group, BatchJobResource.Version, ns, BatchJobResource.Plural, name);

    private static V1Job Job(string ns, string name)
    {
        var job = InformerWatchTests.ManagedJob(name);
        job.Metadata.NamespaceProperty = ns;
        return job;
    }

    /// <summary>The <c>kind</c> of each answer to a write, by method and path (the last one each).</summary>
    private sealed class AnswerKinds : DelegatingHandler
    {
        private readonly ConcurrentDictionary<(string Method, string Path), string?> _kinds = new();

        public bool Has(HttpMethod method, string path) => _kinds.ContainsKey((method.Method, path));

        public string? Of(HttpMethod method, string path) =>
            _kinds.TryGetValue((method.Method, path), out var kind) ? kind : throw new Xunit.Sdk.XunitException($"no answer to {method} {path}");

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (request.Method != HttpMethod.Get && response.IsSuccessStatusCode)
            {
                await response.Content.LoadIntoBufferAsync(cancellationToken);
                using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
                _kinds[(request.Method.Method, request.RequestUri!.AbsolutePath)] = answer.RootElement.TryGetProperty("kind", out var kind) ? kind.GetString() : null;
            }

            return response;
        }
    }
}
