using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRunner.Store;

/// <summary>
/// <c>_run.json</c> of a local run as the executor writes it: what ran, how it ended, and the resolved spec.
/// Compaction later adds its own member (<see cref="CompactionState"/>) and keeps the rest.
/// </summary>
internal sealed record RunManifest(
    [property: JsonPropertyName("batchjob")] string BatchJob,
    [property: JsonPropertyName("namespace")] string Namespace,
    [property: JsonPropertyName("run")] string Run,
    [property: JsonPropertyName("backend")] string Backend,
    [property: JsonPropertyName("phase")] string Phase,
    [property: JsonPropertyName("reason")] string? Reason,
    [property: JsonPropertyName("completions")] int Completions,
    [property: JsonPropertyName("parameters")] IReadOnlyList<string> Parameters,
    [property: JsonPropertyName("succeeded")] int? Succeeded,
    [property: JsonPropertyName("failed")] int? Failed,
    [property: JsonPropertyName("started_at")] DateTimeOffset StartedAt,
    [property: JsonPropertyName("finished_at")] DateTimeOffset? FinishedAt,
    [property: JsonPropertyName("spec")] JsonElement Spec);

/// <summary>Source-generated JSON for the local store's manifests (the CLI is Native AOT: no reflection).</summary>
[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(RunManifest))]
[JsonSerializable(typeof(System.Text.Json.Nodes.JsonObject))]
internal sealed partial class ManifestJson : JsonSerializerContext;
