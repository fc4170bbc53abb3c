using System.Net;
using System.Text.Json;
using BatchRunner.Aws.Intake;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes;
using BatchRunner.Kubernetes.Client;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace BatchRunner.Controller.Intake;

/// <summary>
/// Records requests as BatchJob custom resources. The resource's name is the request's identity, so creating it is
/// the idempotent step: 409 AlreadyExists with the same content hash (kept in an annotation) is this request
/// recorded by an earlier delivery; with another hash, or none (made by someone else), a name collision. The
/// operator then reconciles the BatchJob as any other. Needs <c>create</c> on <c>batchjobs</c>.
/// </summary>
/// With the AWS Batch backend on (<c>awsBatch</c>), BatchJobs for it are recorded too: the operator dispatches them.
/// <param name="refuseBackend">The controller's answer for a backend (<see cref="Hosting.ControllerBackends.Refuse"/>); without one, kubernetes only.</param>
public sealed class KubernetesJobSink(IKubernetes client, Func<Backend, SpecError?>? refuseBackend = null) : IJobSink
{
    /// <summary>The canonical document's hash: the same request, delivered again, has the same.</summary>
    public const string ContentHashAnnotation = "batchrunner.io/content-hash";

    /// <summary>The SQS message the BatchJob came from (its first delivery).</summary>
    public const string MessageIdAnnotation = "batchrunner.io/sqs-message-id";

    private const string FieldManager = "batchrunner-intake";

    public SpecError? RefuseBackend(Backend backend) => refuseBackend is { } refuse ? refuse(backend)
        : backend == Backend.Kubernetes ? null : new SpecError("spec.backend", $"{backend.Name} is not a backend of this controller (backends here: kubernetes)");

    public Backend DefaultBackend => Backend.Kubernetes;

    public async Task<SinkResult> RecordAsync(JobRequest request, CancellationToken cancellation)
    {
        // A BatchJob deleted between our create and our read is created again: twice at most, then it is transient.
        for (var attempt = 0; attempt < 2; attempt++)
        {
            try
            {
                await client.CustomObjects.CreateNamespacedCustomObjectAsync<BatchJobObject>(
                    ToObject(request), BatchJobResource.Group, BatchJobResource.Version, request.Namespace, BatchJobResource.Plural,
                    fieldManager: FieldManager, cancellationToken: cancellation).ConfigureAwait(false);
                return SinkResult.Created;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
            {
                var existing = await GetAsync(request, cancellation).ConfigureAwait(false);
                if (existing is null)
                {
                    continue;
                }

                var hash = existing.Metadata.Annotations?.TryGetValue(ContentHashAnnotation, out var value) == true ? value : null;
                return hash == request.ContentHash
                    ? SinkResult.AlreadyRecorded
                    : SinkResult.Collision(hash is null
                        ? $"BatchJob {request.Namespace}/{request.Name} already exists, created otherwise than by this queue"
                        : $"BatchJob {request.Namespace}/{request.Name} already exists with different content ({hash})");
            }
            catch (HttpOperationException e) when (e.Response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity or HttpStatusCode.RequestEntityTooLarge)
            {
                // The API server (the CRD's schema, an admission webhook) refused it for what it is: retrying cannot help.
                return SinkResult.Refused($"the API server refused BatchJob {request.Namespace}/{request.Name}: {StatusMessage(e)}");
            }
        }

        throw new InvalidOperationException($"BatchJob {request.Namespace}/{request.Name} exists and vanishes again; will retry");
    }

    /// <summary>
    /// Hands a rerun request to the BatchJob recorded earlier from the same document: its rerun annotation is set (the
    /// operator takes it once the run finished). Only the same document may ask, so a queue's tenant reruns only what
    /// it sent; setting the same value again (a redelivery) changes nothing.
    /// </summary>
    public async Task<SinkResult> RequestRerunAsync(JobRequest request, string rerun, CancellationToken cancellation)
    {
        var existing = await GetAsync(request, cancellation).ConfigureAwait(false);
        if (existing is null)
        {
            return SinkResult.Refused($"a rerun of BatchJob {request.Namespace}/{request.Name} was asked, and no such BatchJob exists");
        }

        var sent = request.ContentHashWithoutRerun;
        var recorded = existing.Metadata.Annotations?.TryGetValue(ContentHashAnnotation, out var value) == true ? value : null;
        if (recorded != sent)
        {
            return SinkResult.Collision($"a rerun of BatchJob {request.Namespace}/{request.Name} must carry the document it was created from ({recorded ?? "it was not created by this queue"}); this one is {sent}");
        }

        if (existing.Metadata.Annotations?.TryGetValue(Core.Runs.RerunRequest.Annotation, out var asked) == true && asked == rerun)
        {
            return SinkResult.AlreadyRecorded;
        }

        var patch = new System.Text.Json.Nodes.JsonObject
        {
            ["metadata"] = new System.Text.Json.Nodes.JsonObject { ["annotations"] = new System.Text.Json.Nodes.JsonObject { [Core.Runs.RerunRequest.Annotation] = rerun } },
        };
        await client.CustomObjects.PatchNamespacedCustomObjectAsync(
            new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), BatchJobResource.Group, BatchJobResource.Version, request.Namespace, BatchJobResource.Plural,
            request.Name, fieldManager: FieldManager, cancellationToken: cancellation).ConfigureAwait(false);
        return SinkResult.RerunRequested;
    }

    /// <summary>The custom resource: the canonical document, with the content hash and message id annotated.</summary>
    public static BatchJobObject ToObject(JobRequest request)
    {
        var metadata = request.Job.Metadata;
        var annotations = new Dictionary<string, string>(metadata.Annotations, StringComparer.Ordinal)
        {
            [ContentHashAnnotation] = request.ContentHash,
            [MessageIdAnnotation] = request.MessageId,
        };
        using var document = JsonDocument.Parse(request.Document);
        return new BatchJobObject
        {
            Metadata = new V1ObjectMeta
            {
                Name = metadata.Name,
                NamespaceProperty = metadata.Namespace,
                Labels = metadata.Labels.Count > 0 ? new Dictionary<string, string>(metadata.Labels, StringComparer.Ordinal) : null,
                Annotations = annotations,
            },
            Spec = document.RootElement.GetProperty("spec").Clone(),
        };
    }

    private async Task<BatchJobObject?> GetAsync(JobRequest request, CancellationToken cancellation)
    {
        try
        {
            return await client.CustomObjects.GetNamespacedCustomObjectAsync<BatchJobObject>(
                BatchJobResource.Group, BatchJobResource.Version, request.Namespace, BatchJobResource.Plural, request.Name,
                cancellationToken: cancellation).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    private static string StatusMessage(HttpOperationException e)
    {
        try
        {
            using var status = JsonDocument.Parse(e.Response.Content ?? "");
            if (status.RootElement.TryGetProperty("message", out var message) && message.GetString() is { Length: > 0 } text)
            {
                return text;
            }
        }
        catch (JsonException)
        {
            // Not a Status object: say what HTTP said.
        }

        return $"{(int)e.Response.StatusCode} {e.Response.ReasonPhrase}";
    }
}
