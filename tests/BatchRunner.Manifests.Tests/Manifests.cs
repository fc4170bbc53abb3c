using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace BatchRunner.Manifests.Tests;

/// <summary>Reads the repository's manifests/ folder as JSON trees, the form the API server keeps objects in.</summary>
internal static partial class Manifests
{
    public const string ControllerNamespace = "batchrunner-system";
    public const string ControllerName = "batchrunner-controller";

    private static readonly Lazy<string> RootPath = new(FindRoot);

    /// <summary>The manifests/ folder of the checkout the tests were built from.</summary>
    public static string Root => RootPath.Value;

    public static string CrdPath => Path.Combine(Root, "crds", "batchjobs.batchrunner.io.yaml");

    public static string ExamplesPath => Path.Combine(Root, "examples");

    /// <summary>Every example BatchJob file, by file name.</summary>
    /// <summary>The example BatchJobs (example Queues are in examples/queues, read by <see cref="QueueCrdTests"/>).</summary>
    public static IReadOnlyList<string> ExampleFiles() =>
        Directory.GetFiles(ExamplesPath, "*.yaml").Order(StringComparer.Ordinal).ToList();

    public static bool IsInvalidExample(string path) => Path.GetFileName(path).StartsWith("invalid-", StringComparison.Ordinal);

    /// <summary>The installable objects: every YAML file under manifests/ but the examples and the kustomization.</summary>
    public static IReadOnlyList<JsonObject> Installable() =>
        InstallableFiles().SelectMany(f => Load(File.ReadAllText(f))).ToList();

    public static IReadOnlyList<string> InstallableFiles() =>
        Directory.GetFiles(Root, "*.yaml", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(Root, f).StartsWith("examples", StringComparison.Ordinal))
            .Where(f => Path.GetFileName(f) != "kustomization.yaml")
            .Order(StringComparer.Ordinal)
            .ToList();

    public static JsonObject Crd() => Assert.Single(Load(File.ReadAllText(CrdPath)));

    /// <summary>The v1alpha1 version's <c>openAPIV3Schema</c>.</summary>
    public static JsonObject CrdSchema() =>
        Crd()["spec"]!["versions"]!.AsArray().Single()!["schema"]!["openAPIV3Schema"]!.AsObject();

    public static JsonObject SpecSchema() => CrdSchema()["properties"]!["spec"]!.AsObject();

    /// <summary>The one object of <paramref name="kind"/> named <paramref name="name"/>.</summary>
    public static JsonObject Single(IEnumerable<JsonObject> objects, string kind, string name) =>
        Assert.Single(objects, o => Str(o["kind"]) == kind && Str(o["metadata"]?["name"]) == name);

    public static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public static IEnumerable<string> Strings(JsonNode? node) =>
        node is JsonArray array ? array.Select(i => Str(i) ?? throw new InvalidOperationException($"not a string: {i}")) : [];

    /// <summary>
    /// Every document of a YAML stream as a JSON object. Plain scalars resolve as kubectl's YAML-to-JSON step
    /// resolves them (YAML 1.2 core schema: null, booleans, integers, floats, else a string); quoted ones are strings.
    /// </summary>
    public static IReadOnlyList<JsonObject> Load(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return stream.Documents
            .Where(d => d.RootNode is not YamlScalarNode { Value: null or "" })
            .Select(d => ToJson(d.RootNode) as JsonObject ?? throw new InvalidOperationException("a document is not a mapping"))
            .ToList();
    }

    public static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", ToJson(kv.Value)))),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(ToJson).ToArray()),
        YamlScalarNode scalar => Scalar(scalar),
        _ => throw new InvalidOperationException($"unexpected YAML node {node.NodeType}"),
    };

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? "";
        if (scalar.Style is not YamlDotNet.Core.ScalarStyle.Plain || (!scalar.Tag.IsEmpty && !scalar.Tag.IsNonSpecific && scalar.Tag.Value == "tag:yaml.org,2002:str"))
        {
            return JsonValue.Create(text);
        }

        if (text is "" or "~" or "null" or "Null" or "NULL")
        {
            return null;
        }

        if (text is "true" or "True" or "TRUE" or "false" or "False" or "FALSE")
        {
            return JsonValue.Create(text.Equals("true", StringComparison.OrdinalIgnoreCase));
        }

        if (IntegerPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
        {
            return JsonNode.Parse(integer.ToString(CultureInfo.InvariantCulture));
        }

        if (FloatPattern().IsMatch(text))
        {
            // Written back as JSON does it (1.0 becomes 1), as kubectl does before the API server sees the value.
            return JsonNode.Parse(double.Parse(text, CultureInfo.InvariantCulture).ToString("R", CultureInfo.InvariantCulture));
        }

        return JsonValue.Create(text);
    }

    [GeneratedRegex("^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "manifests");
            if (File.Exists(Path.Combine(candidate, "kustomization.yaml")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"no manifests/kustomization.yaml above {AppContext.BaseDirectory}");
    }
}
