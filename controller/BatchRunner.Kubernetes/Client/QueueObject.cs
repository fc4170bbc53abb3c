using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace BatchRunner.Kubernetes.Client;

/// <summary>The Queue custom resource (cluster-scoped): its names, as the CRD in manifests/crds declares them.</summary>
public static class QueueResource
{
    public const string Group = BatchJobResource.Group;
    public const string Version = BatchJobResource.Version;
    public const string Plural = "queues";
    public const string Kind = "Queue";
    public const string ApiVersion = BatchJobResource.ApiVersion;
}

/// <summary>
/// A Queue as read from the API server. Its spec stays raw JSON: <see cref="Core.Scheduling.QueueDefinitionReader"/>,
/// the same reader local mode uses for its configuration, turns it into a definition or into errors naming fields.
/// </summary>
[KubernetesEntity(Group = QueueResource.Group, ApiVersion = QueueResource.Version, Kind = QueueResource.Kind, PluralName = QueueResource.Plural)]
public sealed class QueueObject : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = QueueResource.ApiVersion;
    [JsonPropertyName("kind")] public string Kind { get; set; } = QueueResource.Kind;
    [JsonPropertyName("metadata")] public V1ObjectMeta Metadata { get; set; } = new();
    [JsonPropertyName("spec")] public JsonElement? Spec { get; set; }
    [JsonPropertyName("status")] public JsonElement? Status { get; set; }
}

public sealed class QueueObjectList : IKubernetesObject<V1ListMeta>, IItems<QueueObject>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = QueueResource.ApiVersion;
    [JsonPropertyName("kind")] public string Kind { get; set; } = "QueueList";
    [JsonPropertyName("metadata")] public V1ListMeta Metadata { get; set; } = new();
    [JsonPropertyName("items")] public IList<QueueObject> Items { get; set; } = [];
}
