using System.Text.Json.Nodes;
using BatchRunner.Core.Spec;

namespace BatchRunner.Manifests.Tests;

/// <summary>BatchJob documents built as JSON, checked both by the parser and against the CRD's schema.</summary>
internal static class Documents
{
    /// <summary>A valid BatchJob for every backend (it has both a command and an image), plus <paramref name="spec"/>'s fields.</summary>
    public static JsonObject Job(JsonObject? spec = null)
    {
        var merged = new JsonObject { ["image"] = "batchrunner/probe:1", ["command"] = new JsonArray("python", "sim.py") };
        foreach (var (key, value) in spec ?? [])
        {
            merged[key] = value?.DeepClone();
        }

        return new JsonObject
        {
            ["apiVersion"] = BatchJob.ApiVersion,
            ["kind"] = BatchJob.KindName,
            ["metadata"] = new JsonObject { ["name"] = "probe", ["namespace"] = "default" },
            ["spec"] = merged,
        };
    }

    /// <summary>A job whose spec has one field set to <paramref name="json"/>.</summary>
    public static JsonObject JobWith(string field, string json) => Job(new JsonObject { [field] = JsonNode.Parse(json) });

    /// <summary>Parses the document's JSON text, as the CLI would read the file.</summary>
    public static ParseResult Parse(JsonObject document) => BatchJobParser.Parse(document.ToJsonString());

    public static IReadOnlyList<string> CrdErrors(JsonObject document) => CrdSchema.Validate(document, Manifests.CrdSchema());

    public static string Errors(ParseResult result) => string.Join("\n", result.Errors.Select(e => e.ToString()).DefaultIfEmpty("(no errors)"));
}
