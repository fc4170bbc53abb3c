using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Runs;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner queue list|show NAME</c>: the queues, what they hold and who waits, why, in what order and until
/// when: from the local controller's state beside the store, or with <c>--cluster</c> from the cluster kubectl's
/// current context points at (kubectl is the transport, so every kubeconfig and auth plugin kubectl knows works).
/// </summary>
internal static class QueueCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var cluster = new Option<bool>("--cluster") { Description = "Read the queues of the cluster kubectl points at, not the local controller's", Recursive = true };
        var list = new Command("list", "Each queue: its backends, indexes pending and admitted, BatchJobs waiting, tenants' usage");
        list.SetAction(async (parsed, cancellation) =>
        {
            var state = await LoadAsync(parsed.GetValue(cluster), parsed.GetValue(CliApplication.StoreOption), stderr, cancellation).ConfigureAwait(false);
            if (state is null)
            {
                return ExitCodes.InvalidInput;
            }

            var queues = (state["queues"] as JsonArray ?? []).OfType<JsonObject>().ToList();
            if (queues.Count == 0)
            {
                await stdout.WriteLineAsync("No queues yet (without any, every BatchJob runs in the default queue at its parallelism)").ConfigureAwait(false);
                return ExitCodes.Succeeded;
            }

            new QueryTable(["QUEUE", "BACKENDS", "PENDING", "ADMITTED", "WAITING", "USAGE", "VALID"], queues.Select(q => new object?[]
            {
                Text(q["name"]), Text(q["backends"]), Number(q["pendingIndexes"]), Number(q["admittedIndexes"]), Number(q["waitingBatchJobs"]), Text(q["usage"]),
                q["valid"] is JsonValue valid && valid.GetValue<bool>() ? "True" : "False: " + Text(q["message"]),
            }).ToList()).WritePlain(stdout);
            return ExitCodes.Succeeded;
        });

        var name = new Argument<string>("name") { Description = "The queue" };
        var show = new Command("show", "One queue: its tenants' shares and usage, and its BatchJobs in line with why they wait and their estimates") { name };
        show.SetAction(async (parsed, cancellation) =>
        {
            var state = await LoadAsync(parsed.GetValue(cluster), parsed.GetValue(CliApplication.StoreOption), stderr, cancellation).ConfigureAwait(false);
            if (state is null)
            {
                return ExitCodes.InvalidInput;
            }

            var queueName = parsed.GetValue(name)!;
            var queue = (state["queues"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault(q => Text(q["name"]) == queueName);
            if (queue is null)
            {
                await stderr.WriteLineAsync($"batchrunner: no queue named {TerminalText.Safe(queueName)}").ConfigureAwait(false);
                return ExitCodes.JobFailed;
            }

            await stdout.WriteLineAsync(queue["valid"] is JsonValue valid && valid.GetValue<bool>()
                ? $"Queue {queueName} on {Text(queue["backends"])}: {Number(queue["admittedIndexes"])} indexes admitted, {Number(queue["pendingIndexes"])} pending, {Number(queue["waitingBatchJobs"])} BatchJob(s) waiting"
                : $"Queue {queueName} is refused: {TerminalText.Safe(Text(queue["message"]) ?? "")}").ConfigureAwait(false);
            var tenants = (queue["tenants"] as JsonArray ?? []).OfType<JsonObject>().ToList();
            if (tenants.Count > 0)
            {
                await stdout.WriteLineAsync().ConfigureAwait(false);
                new QueryTable(["TENANT", "WEIGHT", "SHARE", "USAGE", "ADMITTED", "PENDING"], tenants.Select(t => new object?[]
                {
                    Text(t["name"]), Decimal(t["weight"]), Decimal(t["share"]), Decimal(t["usageShareSeconds"]), Number(t["admittedIndexes"]), Number(t["pendingIndexes"]),
                }).ToList()).WritePlain(stdout);
            }

            var members = (state["batchJobs"] as JsonArray ?? []).OfType<JsonObject>().Where(b => Text(b["queue"]) == queueName)
                .OrderBy(b => b["position"] is JsonValue p ? p.GetValue<int>() : int.MaxValue).ThenBy(b => Text(b["key"]), StringComparer.Ordinal).ToList();
            if (members.Count > 0)
            {
                await stdout.WriteLineAsync().ConfigureAwait(false);
                new QueryTable(["BATCHJOB", "ADMITTED", "WANTED", "POSITION", "REASON", "ETA"], members.Select(b => new object?[]
                {
                    Text(b["key"]), Number(b["allowance"]), Number(b["wanted"]), b["position"] is JsonValue ? Number(b["position"]) : null, Text(b["reason"]), Text(b["eta"]),
                }).ToList()).WritePlain(stdout);
                foreach (var waiting in members.Where(b => b["reason"] is JsonValue))
                {
                    await stdout.WriteLineAsync($"\n{Text(waiting["key"])}: {TerminalText.Safe(Text(waiting["message"]) ?? "")}").ConfigureAwait(false);
                }
            }

            return ExitCodes.Succeeded;
        });

        return new Command("queue", "Queues: what they hold, who waits and why, and when they should run") { cluster, list, show };
    }

    /// <summary>A BatchJob's standing in the local controller's queues, for <c>batchrunner status NAME</c>; null when it has none.</summary>
    public static IReadOnlyList<string> StandingLines(string store, string batchJob) =>
        (QueueSnapshot.Read(store)?["batchJobs"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(b => Text(b["key"]) is { } key && key.EndsWith("/" + batchJob, StringComparison.Ordinal))
            .Select(b => $"{Text(b["key"])} in queue {Text(b["queue"])}: {TerminalText.Safe(Text(b["message"]) ?? "")}")
            .ToList();

    /// <summary>The queues and standings: the local snapshot, or the cluster's Queues and BatchJobs in the same shape.</summary>
    private static async Task<JsonObject?> LoadAsync(bool cluster, string? storeOption, TextWriter stderr, CancellationToken cancellation)
    {
        if (!cluster)
        {
            var store = StoreLocation.Resolve(storeOption);
            return QueueSnapshot.Read(store) ?? new JsonObject { ["queues"] = new JsonArray(), ["batchJobs"] = new JsonArray() };
        }

        var queues = await Kubectl.JsonAsync(["get", "queues.batchrunner.io", "-o", "json"], stderr, cancellation).ConfigureAwait(false);
        var batchJobs = queues is null ? null : await Kubectl.JsonAsync(["get", "batchjobs.batchrunner.io", "--all-namespaces", "-o", "json"], stderr, cancellation).ConfigureAwait(false);
        return queues is null || batchJobs is null ? null : FromCluster(queues, batchJobs);
    }

    /// <summary>The cluster's objects in the snapshot's shape, so both sources print alike.</summary>
    public static JsonObject FromCluster(JsonObject queues, JsonObject batchJobs)
    {
        var queueRows = new JsonArray();
        foreach (var item in (queues["items"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var status = item["status"] as JsonObject;
            var valid = (status?["conditions"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault(c => Text(c["type"]) == "Valid");
            queueRows.Add((JsonNode)new JsonObject
            {
                ["name"] = Text(item["metadata"]?["name"]),
                ["backends"] = Text(status?["backends"]) ?? string.Join(",", (item["spec"]?["backends"] as JsonArray ?? []).Select(Text)),
                ["pendingIndexes"] = status?["pendingIndexes"]?.DeepClone(),
                ["admittedIndexes"] = status?["admittedIndexes"]?.DeepClone(),
                ["waitingBatchJobs"] = status?["waitingBatchJobs"]?.DeepClone(),
                ["usage"] = status?["usage"]?.DeepClone(),
                ["valid"] = valid is null || Text(valid["status"]) == "True",
                ["message"] = valid?["message"]?.DeepClone(),
                ["tenants"] = status?["tenants"]?.DeepClone() ?? new JsonArray(),
            });
        }

        var standings = new JsonArray();
        foreach (var item in (batchJobs["items"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (item["status"]?["queue"] is not JsonObject queue || Text(item["status"]?["phase"]) is "Succeeded" or "Failed" or "Cancelled")
            {
                continue;
            }

            var admitted = (item["status"]?["conditions"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault(c => Text(c["type"]) == "Admitted");
            standings.Add((JsonNode)new JsonObject
            {
                ["key"] = $"{Text(item["metadata"]?["namespace"])}/{Text(item["metadata"]?["name"])}",
                ["queue"] = queue["name"]?.DeepClone(),
                ["allowance"] = queue["allowance"]?.DeepClone(),
                ["wanted"] = queue["wanted"]?.DeepClone(),
                ["position"] = queue["position"]?.DeepClone(),
                ["reason"] = queue["reason"]?.DeepClone(),
                ["message"] = admitted?["message"]?.DeepClone(),
                ["eta"] = queue["eta"]?.DeepClone(),
            });
        }

        return new JsonObject { ["queues"] = queueRows, ["batchJobs"] = standings };
    }

    private static string? Text(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    private static long? Number(JsonNode? node) => node is JsonValue value && value.TryGetValue<long>(out var number) ? number
        : node is JsonValue other && other.TryGetValue<double>(out var real) ? (long)real : null;

    private static string? Decimal(JsonNode? node) => node is JsonValue value && value.TryGetValue<double>(out var number) ? number.ToString("0.###", CultureInfo.InvariantCulture) : null;
}
