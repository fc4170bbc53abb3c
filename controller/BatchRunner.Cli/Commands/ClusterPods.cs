using System.Globalization;
using System.Text.Json.Nodes;
using BatchRunner.Core.Runs;

namespace BatchRunner.Cli.Commands;

/// <summary>A pod of a BatchJob's Job as <c>kubectl get pods -o json</c> shows it: which index it runs, and when it was made.</summary>
internal sealed record ClusterPod(string Name, string Container, int Index, DateTimeOffset Created, string? Phase);

/// <summary>
/// Which index each pod of a BatchJob runs: its completion index (the annotation an Indexed Job gives its pods), which
/// is the index itself, or on a Job that runs a list of indexes (a rerun, a part of a split run: BATCHRUNNER_INDEXES in
/// its container) the index at that position of the list. Pods without one (Kubernetes before 1.21) are left out.
/// </summary>
internal static class ClusterPods
{
    /// <summary>The pods of <paramref name="index"/>, oldest first: their attempts still in the cluster, in order.</summary>
    public static IReadOnlyList<ClusterPod> OfIndex(JsonObject podList, int index) =>
        (podList["items"] as JsonArray ?? []).OfType<JsonObject>().Select(Read).OfType<ClusterPod>()
            .Where(p => p.Index == index).OrderBy(p => p.Created).ThenBy(p => p.Name, StringComparer.Ordinal).ToList();

    private static ClusterPod? Read(JsonObject pod)
    {
        var metadata = pod["metadata"] as JsonObject;
        var container = (pod["spec"]?["containers"] as JsonArray)?.FirstOrDefault() as JsonObject;
        if (Text(metadata?["name"]) is not { } name || Text(container?["name"]) is not { } containerName
            || !int.TryParse(Text(metadata?["annotations"]?[WorkloadLabels.CompletionIndexAnnotation]), NumberStyles.None, CultureInfo.InvariantCulture, out var position))
        {
            return null;
        }

        var listed = (container?["env"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault(e => Text(e["name"]) == WorkloadEnvironment.RerunIndexes);
        int index;
        if (Text(listed?["value"]) is { } ranges)
        {
            var indexes = IndexRanges.Parse(ranges);
            if (position >= indexes.Count)
            {
                return null;
            }

            index = indexes[position];
        }
        else
        {
            index = position;
        }

        var created = DateTimeOffset.TryParse(Text(metadata?["creationTimestamp"]), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : DateTimeOffset.MinValue;
        return new ClusterPod(name, containerName, index, created, Text(pod["status"]?["phase"]));
    }

    private static string? Text(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
}
