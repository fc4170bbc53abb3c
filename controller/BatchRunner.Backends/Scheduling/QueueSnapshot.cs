using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Core.Scheduling;

namespace BatchRunner.Backends.Scheduling;

/// <summary>
/// What a host without a cluster last decided, kept beside its store (<c>STORE/.queues.json</c>): every queue's
/// summary, every BatchJob's standing, the tenants' usage. The controller's local mode writes it each cycle (its
/// usage is where a restart carries on from); <c>batchrunner queue</c> and <c>batchrunner status</c> read it.
/// Written as plain JSON nodes, so the native CLI reads it without reflection.
/// </summary>
public static class QueueSnapshot
{
    public const string FileName = ".queues.json";

    public static string PathIn(string storeRoot) => Path.Combine(storeRoot, FileName);

    public static JsonObject ToJson(CycleResult result, IReadOnlyDictionary<string, string> refused, DateTimeOffset at)
    {
        var queues = new JsonArray();
        foreach (var queue in result.Queues)
        {
            queues.Add((JsonNode)new JsonObject
            {
                ["name"] = queue.Name,
                ["backends"] = string.Join(",", queue.Backends.Select(b => b.Name)),
                ["pendingIndexes"] = queue.PendingIndexes,
                ["admittedIndexes"] = queue.AdmittedIndexes,
                ["waitingBatchJobs"] = queue.WaitingBatchJobs,
                ["usage"] = queue.Usage,
                ["valid"] = true,
                ["tenants"] = TenantsJson(queue.Tenants),
            });
        }

        foreach (var (name, errors) in refused.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            queues.Add((JsonNode)new JsonObject { ["name"] = name, ["valid"] = false, ["message"] = errors });
        }

        var batchJobs = new JsonArray();
        foreach (var standing in result.Standings.Values.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            batchJobs.Add((JsonNode)new JsonObject
            {
                ["key"] = standing.Key,
                ["queue"] = standing.Queue,
                ["allowance"] = standing.Allowance,
                ["wanted"] = standing.Wanted,
                ["position"] = standing.Position,
                ["reason"] = standing.Reason,
                ["message"] = StandingText.Message(standing, at),
                ["eta"] = StandingText.Eta(standing, at),
            });
        }

        return new JsonObject { ["at"] = Time(at), ["queues"] = queues, ["batchJobs"] = batchJobs };
    }

    /// <summary>Writes the snapshot whole (a reader never sees half of one).</summary>
    public static void Write(string storeRoot, JsonObject snapshot)
    {
        var path = PathIn(storeRoot);
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, snapshot.ToJsonString());
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>The snapshot, or null when none was written (or it does not read: it is rewritten every cycle).</summary>
    public static JsonObject? Read(string storeRoot)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(PathIn(storeRoot))) as JsonObject;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Each tenant's standing as a queue's status (and this snapshot) keep it, usage included.</summary>
    public static JsonArray TenantsJson(IEnumerable<TenantStanding> tenants) => new([.. tenants.Select(tenant => (JsonNode)new JsonObject
    {
        ["name"] = tenant.Name,
        ["weight"] = tenant.Weight,
        ["share"] = Math.Round(tenant.Share, 4),
        ["usageShareSeconds"] = Math.Round(tenant.Usage.ShareSeconds, 3),
        ["usageAt"] = Time(tenant.Usage.At),
        ["admittedIndexes"] = tenant.AdmittedIndexes,
        ["pendingIndexes"] = tenant.PendingIndexes,
    })]);

    /// <summary>The tenants' usage a snapshot recorded: where a restarted host carries on from.</summary>
    public static IReadOnlyList<TenantUsage> UsageOf(JsonObject? snapshot) =>
        [.. (snapshot?["queues"] as JsonArray ?? []).OfType<JsonObject>().SelectMany(q => q["name"] is JsonValue name ? UsageOf(name.GetValue<string>(), q["tenants"]) : [])];

    /// <summary>The usage in a queue's list of tenants (<see cref="TenantsJson"/>); entries that do not read are left out.</summary>
    public static IEnumerable<TenantUsage> UsageOf(string queue, JsonNode? tenants)
    {
        foreach (var tenant in (tenants as JsonArray ?? []).OfType<JsonObject>())
        {
            if (tenant["name"] is JsonValue who && who.TryGetValue<string>(out var name) && tenant["usageShareSeconds"] is JsonValue seconds
                && seconds.TryGetValue<double>(out var shareSeconds) && double.IsFinite(shareSeconds) && shareSeconds >= 0
                && tenant["usageAt"] is JsonValue at && at.TryGetValue<string>(out var text)
                && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var since))
            {
                yield return new TenantUsage(queue, name, shareSeconds, since);
            }
        }
    }

    private static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
