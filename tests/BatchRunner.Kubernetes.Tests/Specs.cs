using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Client;
using k8s.Models;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>Builds BatchJobs for the tests: a valid kubernetes spec with some fields replaced, parsed or as a custom resource.</summary>
internal static class Specs
{
    public const string Namespace = "team-a";
    public const string Name = "sweep";
    public const string Uid = "0b5c6d4e-1111-4222-8333-944455556666";

    /// <summary>
    /// A valid spec for backend kubernetes with the fields of <paramref name="overrides"/> (a JSON object) put in
    /// place of the defaults; a field set to null is removed.
    /// </summary>
    public static JsonObject Spec(string overrides = "{}")
    {
        var spec = new JsonObject
        {
            ["image"] = "registry.example/sim:1",
            ["command"] = new JsonArray("python", "sim.py"),
            ["backend"] = "kubernetes",
        };
        foreach (var (key, value) in JsonNode.Parse(overrides)!.AsObject())
        {
            if (value is null)
            {
                spec.Remove(key);
            }
            else
            {
                spec[key] = value.DeepClone();
            }
        }

        return spec;
    }

    public static JsonObject Document(JsonObject spec, string name = Name) => new()
    {
        ["apiVersion"] = BatchJob.ApiVersion,
        ["kind"] = BatchJob.KindName,
        ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = Namespace },
        // Through text, as every door reads it (a tree built in code holds ints where parsed JSON holds numbers).
        ["spec"] = JsonNode.Parse(spec.ToJsonString()),
    };

    public static BatchJob Job(string overrides = "{}", string name = Name) => Job(Spec(overrides), name);

    public static BatchJob Job(JsonObject spec, string name = Name)
    {
        var parsed = BatchJobParser.FromNode(Document(spec, name));
        Assert.True(parsed.IsValid, "expected a valid spec, got:\n" + string.Join("\n", parsed.Errors));
        return parsed.Job!;
    }

    /// <summary>The custom resource as the API server would hold it after <c>kubectl apply</c>.</summary>
    public static BatchJobObject Object(string overrides = "{}", string name = Name, long generation = 1) =>
        Object(Spec(overrides), name, generation);

    public static BatchJobObject Object(JsonObject spec, string name = Name, long generation = 1) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = Namespace,
            Uid = Uid,
            Generation = generation,
            ResourceVersion = "1",
        },
        Spec = JsonSerializer.SerializeToElement(spec),
    };
}
