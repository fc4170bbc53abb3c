using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// A BatchJob custom resource as read from the API server. The spec stays raw JSON: BatchRunner.Core's parser,
/// the same one the CLI and the queue use, is what turns it into a BatchJob (or into errors).
/// </summary>
[KubernetesEntity(Group = BatchJobResource.Group, ApiVersion = BatchJobResource.Version, Kind = BatchJobResource.Kind, PluralName = BatchJobResource.Plural)]
public sealed class BatchJobObject : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = BatchJobResource.ApiVersion;
    [JsonPropertyName("kind")] public string Kind { get; set; } = BatchJobResource.Kind;
    [JsonPropertyName("metadata")] public V1ObjectMeta Metadata { get; set; } = new();
    [JsonPropertyName("spec")] public JsonElement? Spec { get; set; }
    [JsonPropertyName("status")] public JsonElement? Status { get; set; }

    public string Key => $"{Metadata.NamespaceProperty}/{Metadata.Name}";

    /// <summary>The document the parser reads: what a user wrote, without the server's bookkeeping.</summary>
    public JsonNode ToDocument()
    {
        var metadata = new JsonObject { ["name"] = Metadata.Name, ["namespace"] = Metadata.NamespaceProperty };
        if (Metadata.Labels is { Count: > 0 } labels)
        {
            metadata["labels"] = new JsonObject(labels.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)JsonValue.Create(l.Value))));
        }

        return new JsonObject
        {
            ["apiVersion"] = ApiVersion,
            ["kind"] = Kind,
            ["metadata"] = metadata,
            ["spec"] = Spec is { } spec ? JsonNode.Parse(spec.GetRawText()) : null,
        };
    }
}

public sealed class BatchJobObjectList : IKubernetesObject<V1ListMeta>, IItems<BatchJobObject>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = BatchJobResource.ApiVersion;
    [JsonPropertyName("kind")] public string Kind { get; set; } = "BatchJobList";
    [JsonPropertyName("metadata")] public V1ListMeta Metadata { get; set; } = new();
    [JsonPropertyName("items")] public IList<BatchJobObject> Items { get; set; } = [];
}
