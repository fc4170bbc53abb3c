using System.Globalization;
using System.Text.Json.Nodes;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;

namespace BatchRunner.Controller.Hosting;

/// <summary>
/// <c>BatchRunner:Queues:NAME</c>: queues for the controller without a cluster, written as a Queue object's spec
/// (<c>BatchRunner:Queues:default:quotas:local:indexes=4</c>, <c>...:tenants:team-a=2</c>, <c>...:backends:0=local</c>)
/// and read by the same reader, so both hosts refuse the same mistakes with the same words.
/// </summary>
public static class QueueConfiguration
{
    public const string Section = "BatchRunner:Queues";

    /// <summary>The configured queues and, unless one is named so, the default queue; refused ones with their errors.</summary>
    public static (IReadOnlyList<QueueDefinition> Queues, IReadOnlyDictionary<string, string> Refused) Read(IConfiguration configuration, IReadOnlyList<Backend> backends) =>
        QueueDefinitionReader.ReadAll(configuration.GetSection(Section).GetChildren().Select(q => (q.Key, ToNode(q), $"{Section}:{q.Key}")), backends);

    /// <summary>
    /// A configuration section as the JSON a Queue object holds: children numbered 0..n-1 are a list, numbers are
    /// numbers (configuration keeps every value as text).
    /// </summary>
    public static JsonNode? ToNode(IConfigurationSection section)
    {
        var children = section.GetChildren().ToList();
        if (children.Count == 0)
        {
            return section.Value is not { } text ? null
                : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number)
                    ? number == Math.Floor(number) && Math.Abs(number) < int.MaxValue ? JsonValue.Create((int)number) : JsonValue.Create(number)
                    : JsonValue.Create(text);
        }

        if (children.Select((c, i) => c.Key == i.ToString(CultureInfo.InvariantCulture)).All(x => x))
        {
            return new JsonArray([.. children.Select(ToNode)]);
        }

        var node = new JsonObject();
        foreach (var child in children)
        {
            node[child.Key] = ToNode(child);
        }

        return node;
    }
}
