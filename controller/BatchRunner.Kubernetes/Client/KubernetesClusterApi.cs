using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Client;

/// <summary>The reconciler's view of a real cluster: informer caches for reads, the API for writes.</summary>
public sealed class KubernetesClusterApi(
    IKubernetes client,
    Informer<BatchJobObject> batchJobs,
    Informer<V1Job> jobs,
    ClusterCapabilities capabilities,
    string component,
    TimeProvider time,
    ILogger? log = null) : IClusterApi
{
    /// <summary>Events waiting to be written; past this many, the oldest goes (and says so), as client-go's recorder drops under load.</summary>
    private const int EventBacklog = 4096;

    private readonly Channel<Corev1Event> _events = Channel.CreateBounded<Corev1Event>(
        new BoundedChannelOptions(EventBacklog) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
        dropped => log?.LogWarning("Dropped event {Reason} on {BatchJob}: more than {Backlog} events wait to be written", dropped.Reason, dropped.InvolvedObject.Name, EventBacklog));

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _statusWrites = new(StringComparer.Ordinal);

    /// <summary>An Event waits at most this long for new BatchJobs' arrivals to pause before it is written anyway.</summary>
    private static readonly TimeSpan MostEventWait = TimeSpan.FromSeconds(30);

    public ClusterCapabilities Capabilities { get; } = capabilities;

    /// <summary>The operator's measure of arrivals; without one the controller is never busy.</summary>
    public DispatchPressure? Pressure { get; set; }

    public bool Busy => Pressure?.Busy == true;

    public bool JobsBeingCounted => Pressure?.Counting == true;

    public BatchJobObject? GetBatchJob(string key) => batchJobs.TryGet(key, out var value) ? value : null;

    public V1Job? GetJob(string ns, string name) => jobs.TryGet($"{ns}/{name}", out var value) ? value : null;

    public IEnumerable<V1Job> JobsIn(string ns) => jobs.Items.Where(j => j.Metadata.NamespaceProperty == ns);

    public async Task<BatchJobObject> SetFinalizersAsync(BatchJobObject batchJob, IReadOnlyList<string> finalizers, CancellationToken cancellation)
    {
        // The resourceVersion makes this a compare-and-swap: a concurrent change fails with 409 and is retried.
        var patch = MergePatches.Finalizers(finalizers, batchJob.Metadata.ResourceVersion);
        var updated = await client.CustomObjects.PatchNamespacedCustomObjectAsync<BatchJobObject>(
            new V1Patch(patch, V1Patch.PatchType.MergePatch), BatchJobResource.Group, BatchJobResource.Version,
            batchJob.Metadata.NamespaceProperty, BatchJobResource.Plural, batchJob.Metadata.Name, cancellationToken: cancellation).ConfigureAwait(false);
        return updated;
    }

    public async Task PatchStatusAsync(BatchJobObject batchJob, BatchJobStatus status, CancellationToken cancellation)
    {
        var (ns, name) = (batchJob.Metadata.NamespaceProperty, batchJob.Metadata.Name);
        var patch = MergePatches.Status(status);
        string? written;
        if (client is k8s.Kubernetes kubernetes)
        {
            // Only the version written is read (to know its watch event as this write's): the answer is its metadata.
            var answer = await SendForMetadataAsync(
                kubernetes, HttpMethod.Patch,
                $"apis/{BatchJobResource.Group}/{BatchJobResource.Version}/namespaces/{Uri.EscapeDataString(ns)}/{BatchJobResource.Plural}/{Uri.EscapeDataString(name)}/status",
                patch, "application/merge-patch+json", cancellation).ConfigureAwait(false);
            written = ClientPipeline.ResourceVersionOf(answer);
        }
        else
        {
            var updated = await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<BatchJobObject>(
                new V1Patch(patch, V1Patch.PatchType.MergePatch), BatchJobResource.Group, BatchJobResource.Version, ns, BatchJobResource.Plural, name,
                cancellationToken: cancellation).ConfigureAwait(false);
            written = updated?.Metadata?.ResourceVersion;
        }

        if (written is not null)
        {
            _statusWrites[ObjectKey.Of(batchJob)] = written;
        }
    }

    /// <summary>
    /// Whether this version of the BatchJob is the one this controller's last status write made: nothing in it asks
    /// for a reconcile (the reconcile that wrote it went on from it), so the watch event that brings it back is
    /// skipped, as controller-runtime's generation predicate skips status-only updates. A status written by anyone
    /// else still wakes the BatchJob up.
    /// </summary>
    public bool IsOwnStatusWrite(BatchJobObject batchJob) =>
        _statusWrites.TryGetValue(ObjectKey.Of(batchJob), out var written) && written == batchJob.Metadata.ResourceVersion;

    /// <summary>The BatchJob is gone: its last write is not remembered any longer.</summary>
    public void Forget(string key) => _statusWrites.TryRemove(key, out _);

    public async Task<V1ConfigMap?> GetConfigMapAsync(string ns, string name, CancellationToken cancellation)
    {
        try
        {
            return await client.CoreV1.ReadNamespacedConfigMapAsync(name, ns, cancellationToken: cancellation).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task<bool> CreateConfigMapAsync(V1ConfigMap configMap, CancellationToken cancellation)
    {
        try
        {
            await client.CoreV1.CreateNamespacedConfigMapAsync(configMap, configMap.Metadata.NamespaceProperty, cancellationToken: cancellation).ConfigureAwait(false);
            return true;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            return false;
        }
        catch (HttpOperationException e) when (IsRefusal(e))
        {
            throw new ObjectRefusedException("ConfigMap", configMap.Metadata.Name, (int)e.Response.StatusCode, StatusMessageOf(e), e);
        }
    }

    public async Task DeleteConfigMapAsync(string ns, string name, CancellationToken cancellation)
    {
        try
        {
            await client.CoreV1.DeleteNamespacedConfigMapAsync(name, ns, cancellationToken: cancellation).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Already gone.
        }
    }

    public async Task<bool> CreateJobAsync(V1Job job, CancellationToken cancellation)
    {
        try
        {
            var ns = job.Metadata.NamespaceProperty;
            await CreateUnreadAsync($"apis/batch/v1/namespaces/{Uri.EscapeDataString(ns)}/jobs", job,
                () => client.BatchV1.CreateNamespacedJobAsync(job, ns, cancellationToken: cancellation), cancellation).ConfigureAwait(false);
            return true;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            return false;
        }
        catch (HttpOperationException e) when (IsRefusal(e))
        {
            throw new ObjectRefusedException("Job", job.Metadata.Name, (int)e.Response.StatusCode, StatusMessageOf(e), e);
        }
    }

    /// <summary>
    /// Creates an object without asking for, or decoding, a copy of it: nothing here reads one (the informer brings the
    /// object back), decoding every created Job was about a tenth of the controller's CPU in a burst of new BatchJobs,
    /// and encoding it was the API server's. The request goes through the client's own pipeline (credentials, rate
    /// limit, waits on 429, call counts); a failure is thrown as the generated call throws it, with the server's
    /// answer. A client that is not the library's (a test's) takes the generated call.
    /// </summary>
    private async Task CreateUnreadAsync<T>(string path, T body, Func<Task> generated, CancellationToken cancellation)
    {
        if (client is not k8s.Kubernetes kubernetes)
        {
            await generated().ConfigureAwait(false);
            return;
        }

        await SendForMetadataAsync(kubernetes, HttpMethod.Post, path, KubernetesJson.Serialize(body), "application/json", cancellation).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends a write through the client's own pipeline and asks for the written object's metadata alone
    /// (<see cref="ClientPipeline.MetadataOnly"/>): the API server does not encode, and this controller does not read,
    /// a whole object it would throw away. Returns the answer's bytes.
    /// </summary>
    private static async Task<byte[]> SendForMetadataAsync(
        k8s.Kubernetes kubernetes, HttpMethod method, string path, string body, string contentType, CancellationToken cancellation)
    {
        // The generated calls' bound on a call that never answers (100 s unless the configuration says otherwise).
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        bounded.CancelAfter(kubernetes.HttpClientTimeout);
        using var request = new HttpRequestMessage(method, ClientPipeline.Address(kubernetes, path))
        {
            Content = new StringContent(body, System.Text.Encoding.UTF8, contentType),
        };
        ClientPipeline.AcceptMetadataOnly(request);
        using var response = await ClientPipeline.SendAsync(kubernetes, request, body, HttpCompletionOption.ResponseContentRead, bounded.Token).ConfigureAwait(false);
        return await response.Content.ReadAsByteArrayAsync(bounded.Token).ConfigureAwait(false);
    }

    private static bool IsRefusal(HttpOperationException e) =>
        e.Response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.UnprocessableEntity or HttpStatusCode.RequestEntityTooLarge;

    /// <summary>The message of the Status object the API server answered with, else its reason phrase.</summary>
    private static string StatusMessageOf(HttpOperationException e)
    {
        try
        {
            if (e.Response.Content is { Length: > 0 } content && JsonNode.Parse(content)?["message"]?.GetValue<string>() is { Length: > 0 } message)
            {
                return message;
            }
        }
        catch (JsonException)
        {
            // Not a Status object: the reason phrase says what there is.
        }

        return e.Response.ReasonPhrase ?? e.Message;
    }

    public async Task DeleteJobAsync(string ns, string name, CancellationToken cancellation)
    {
        try
        {
            await client.BatchV1.DeleteNamespacedJobAsync(name, ns, propagationPolicy: "Foreground", cancellationToken: cancellation).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Already gone.
        }
    }

    public async Task<bool> JobExistsAsync(string ns, string name, CancellationToken cancellation)
    {
        try
        {
            await client.BatchV1.ReadNamespacedJobAsync(name, ns, cancellationToken: cancellation).ConfigureAwait(false);
            return true;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    public async Task PatchJobAsync(string ns, string name, int parallelism, long? activeDeadlineSeconds, CancellationToken cancellation)
    {
        await client.BatchV1.PatchNamespacedJobAsync(new V1Patch(MergePatches.JobSpec(parallelism, activeDeadlineSeconds), V1Patch.PatchType.MergePatch), name, ns, cancellationToken: cancellation).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<V1ConfigMap>> ListConfigMapsAsync(string ns, string labelSelector, CancellationToken cancellation)
    {
        var configMaps = await client.CoreV1.ListNamespacedConfigMapAsync(ns, labelSelector: labelSelector, cancellationToken: cancellation).ConfigureAwait(false);
        return configMaps.Items.ToList();
    }

    public async Task<IReadOnlyList<V1Pod>> ListPodsAsync(string ns, string labelSelector, CancellationToken cancellation)
    {
        var pods = await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: labelSelector, cancellationToken: cancellation).ConfigureAwait(false);
        return pods.Items.ToList();
    }

    /// <summary>
    /// Queues the Event and returns: <see cref="SendEventsAsync"/> writes it apart from the reconcile, as client-go's
    /// recorder does, so a reconcile never waits on an Event (and Events wait for the work, see <see cref="RateLimitingHandler"/>).
    /// </summary>
    public Task RecordEventAsync(BatchJobObject batchJob, string type, string reason, string message, CancellationToken cancellation)
    {
        _events.Writer.TryWrite(EventOf(batchJob, type, reason, message));
        return Task.CompletedTask;
    }

    /// <summary>Writes the queued Events until cancelled; one that cannot be written is logged and dropped, never retried forever.</summary>
    public async Task SendEventsAsync(CancellationToken cancellation)
    {
        try
        {
            await foreach (var item in _events.Reader.ReadAllAsync(cancellation).ConfigureAwait(false))
            {
                // While new BatchJobs keep arriving their Jobs go first; the Event keeps the time it happened.
                while (Busy && time.GetUtcNow().UtcDateTime - item.FirstTimestamp < MostEventWait)
                {
                    await Task.Delay(DispatchPressure.Quiet / 4, time, cancellation).ConfigureAwait(false);
                }

                try
                {
                    var ns = item.Metadata.NamespaceProperty;
                    await CreateUnreadAsync($"api/v1/namespaces/{Uri.EscapeDataString(ns)}/events", item,
                        () => client.CoreV1.CreateNamespacedEventAsync(item, ns, cancellationToken: cancellation), cancellation).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log?.LogWarning(e, "Could not record event {Reason} on {BatchJob}", item.Reason, item.InvolvedObject.Name);
                }
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Leadership lost or shutting down: Events not written yet go with it.
        }
    }

    private Corev1Event EventOf(BatchJobObject batchJob, string type, string reason, string message)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var ns = batchJob.Metadata.NamespaceProperty;
        return
            new Corev1Event
            {
                Metadata = new V1ObjectMeta { GenerateName = batchJob.Metadata.Name + ".", NamespaceProperty = ns },
                InvolvedObject = new V1ObjectReference
                {
                    ApiVersion = BatchJobResource.ApiVersion,
                    Kind = BatchJobResource.Kind,
                    Name = batchJob.Metadata.Name,
                    NamespaceProperty = ns,
                    Uid = batchJob.Metadata.Uid,
                    ResourceVersion = batchJob.Metadata.ResourceVersion,
                },
                Type = type,
                Reason = reason,
                Message = message.Length > 1024 ? message[..1021] + "..." : message,
                Source = new V1EventSource { Component = component },
                ReportingComponent = component,
                FirstTimestamp = now,
                LastTimestamp = now,
                Count = 1,
            };
    }
}
