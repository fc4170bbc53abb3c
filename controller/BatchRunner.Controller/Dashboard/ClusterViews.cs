using System.Text.Json;
using BatchRunner.Dashboard;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Status;

namespace BatchRunner.Controller.Dashboard;

/// <summary>What the dashboard shows of the cluster's objects: their status as the controller wrote it, and a few spec fields.</summary>
public static class ClusterViews
{
    public static BatchJobView Of(BatchJobObject item)
    {
        var view = new BatchJobView
        {
            Namespace = item.Metadata.NamespaceProperty ?? "",
            Name = item.Metadata.Name ?? "",
            Created = item.Metadata.CreationTimestamp is { } created ? new DateTimeOffset(DateTime.SpecifyKind(created, DateTimeKind.Utc)) : null,
            Image = Text(item.Spec, "image"),
            Backend = Text(item.Spec, "backend"),
            Queue = Text(item.Spec, "queue"),
        };

        BatchJobStatus status;
        try
        {
            status = BatchJobStatus.FromJson(item.Status);
        }
        catch (JsonException e)
        {
            // Written by hand or by another version: shown as unreadable rather than dropped.
            return view with { Phase = "Unknown", Conditions = [new ConditionView("Status", "Unknown", "Unreadable", e.Message, null)] };
        }

        var queue = status.Queue;
        return view with
        {
            Phase = status.Phase?.ToString() ?? "Pending",
            Total = status.Total ?? 0,
            Succeeded = status.Succeeded ?? 0,
            Failed = status.Failed ?? 0,
            Active = status.Active ?? 0,
            RunId = status.RunId,
            Started = status.StartTime,
            Completed = status.CompletionTime,
            FailedIndexes = status.FailedIndexes,
            FailedIndexesTruncated = status.FailedIndexesTruncated == true,
            Backends = (status.Backends ?? []).Select(b => new BackendShareView(b.Name, b.Indexes, b.Phase?.ToString() ?? "Pending", b.Succeeded, b.Failed, b.Active)).ToList(),
            Queue = queue?.Name is { Length: > 0 } name ? name : view.Queue,
            Position = queue?.Position,
            Allowance = queue?.Allowance ?? 0,
            Wanted = queue?.Wanted ?? 0,
            WaitReason = queue?.Reason,
            WaitMessage = status.Find(Conditions.Admitted)?.Message,
            Eta = queue?.Eta,
            Conditions = status.Conditions.Select(c => new ConditionView(c.Type, c.Status, c.Reason, c.Message, c.LastTransitionTime)).ToList(),
        };
    }

    public static QueueView Of(QueueObject item)
    {
        var status = item.Status is { ValueKind: JsonValueKind.Object } s ? s : default;
        var valid = status.ValueKind == JsonValueKind.Object && status.TryGetProperty("conditions", out var conditions) && conditions.ValueKind == JsonValueKind.Array
            ? conditions.EnumerateArray().FirstOrDefault(c => Text(c, "type") == "Valid")
            : default;
        var specBackends = item.Spec is { ValueKind: JsonValueKind.Object } spec && spec.TryGetProperty("backends", out var list) && list.ValueKind == JsonValueKind.Array
            ? string.Join(",", list.EnumerateArray().Select(b => b.ValueKind == JsonValueKind.String ? b.GetString() : b.ValueKind == JsonValueKind.Object ? Text(b, "name") : null).Where(b => b is not null))
            : "";
        return new QueueView
        {
            Name = item.Metadata.Name ?? "",
            Backends = Text(status, "backends") ?? specBackends,
            Pending = Number(status, "pendingIndexes"),
            Admitted = Number(status, "admittedIndexes"),
            Waiting = Number(status, "waitingBatchJobs"),
            Usage = Text(status, "usage"),
            Valid = valid.ValueKind != JsonValueKind.Object || Text(valid, "status") == "True",
            Message = valid.ValueKind == JsonValueKind.Object ? Text(valid, "message") : null,
            Tenants = status.ValueKind == JsonValueKind.Object && status.TryGetProperty("tenants", out var tenants) && tenants.ValueKind == JsonValueKind.Array
                ? tenants.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.Object).Select(t => new TenantView(
                    Text(t, "name") ?? "", Real(t, "weight"), Real(t, "share"), Real(t, "usageShareSeconds"), Number(t, "admittedIndexes"), Number(t, "pendingIndexes"))).ToList()
                : [],
        };
    }

    private static string? Text(JsonElement? element, string property) =>
        element is { ValueKind: JsonValueKind.Object } value && value.TryGetProperty(property, out var field) && field.ValueKind == JsonValueKind.String ? field.GetString() : null;

    private static int Number(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(property, out var field) && field.ValueKind == JsonValueKind.Number && field.TryGetInt32(out var number) ? number : 0;

    private static double Real(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(property, out var field) && field.ValueKind == JsonValueKind.Number ? field.GetDouble() : 0;
}
