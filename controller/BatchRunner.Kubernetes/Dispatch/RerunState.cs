using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRunner.Kubernetes.Dispatch;

/// <summary>
/// The Kubernetes backend's state while a rerun goes (kept in the BatchJob's <c>status.backendState</c>): which rerun,
/// its indexes, and what stays of the outcome before it. The first dispatch keeps none: it is derived from its Job.
/// </summary>
internal sealed class RerunState
{
    public int Number { get; set; }
    public string Indexes { get; set; } = "";
    public int SucceededBefore { get; set; }
    public string? FailedBefore { get; set; }

    public JsonElement ToJson() => JsonSerializer.SerializeToElement(this, RerunStateJson.Default.RerunState);

    public static RerunState? FromJson(JsonElement? state)
    {
        try
        {
            return state is { ValueKind: JsonValueKind.Object } value && value.TryGetProperty("number", out _) ? value.Deserialize(RerunStateJson.Default.RerunState) : null;
        }
        catch (JsonException)
        {
            // A state edited by hand: the rerun is taken again from the host's record, and its Job is found by name.
            return null;
        }
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(RerunState))]
internal sealed partial class RerunStateJson : JsonSerializerContext;
