using System.Diagnostics;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace BatchRunner.Charts.Tests;

/// <summary>What one run of helm-render gave: its exit code, the manifests (or notes) and its error output.</summary>
internal sealed record Rendering(int ExitCode, string Output, string Error)
{
    /// <summary>Every rendered object, each document checked for duplicate keys first.</summary>
    public IReadOnlyList<JsonObject> Objects()
    {
        Assert.True(ExitCode == 0, $"helm-render failed ({ExitCode}): {Error}");
        Helm.AssertNoDuplicateKeys(Output);
        return ManifestFiles.Load(Output);
    }
}

/// <summary>
/// Runs tests/helm's renderer (built once by tests/helm/build.sh, cached in ~/.cache/batchrunner) against the
/// repository's chart, as <c>helm template</c> would run.
/// </summary>
internal static class Helm
{
    public const string Release = "batchrunner";
    public const string Namespace = "batchrunner-system";

    private static readonly Lazy<string> Binary = new(Build);

    public static string RepoRoot { get; } = Path.GetDirectoryName(ManifestFiles.Root)!;

    public static string ChartPath { get; } = Path.Combine(RepoRoot, "charts", "batchrunner");

    /// <summary>The values files of the chart's targets, by name; "" is the chart's defaults alone.</summary>
    public static TheoryData<string> ValuesFiles() => new("", "values-minikube.yaml", "values-eks.yaml");

    /// <summary>-f arguments for a values file of <see cref="ValuesFiles"/>.</summary>
    public static string[] ValuesArgs(string valuesFile) =>
        valuesFile.Length == 0 ? [] : ["-f", Path.Combine(ChartPath, valuesFile)];

    /// <summary>Renders charts/batchrunner as release <see cref="Release"/> in <see cref="Namespace"/>.</summary>
    public static Rendering Render(params string[] args) =>
        RenderChart(ChartPath, ["--release-name", Release, "--namespace", Namespace, .. args]);

    public static Rendering RenderChart(string chart, params string[] args)
    {
        var start = new ProcessStartInfo(Binary.Value) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(chart);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)), "helm-render did not finish in a minute");
        return new Rendering(process.ExitCode, output.Result, error.Result);
    }

    public static JsonObject Single(IEnumerable<JsonObject> objects, string kind, string name) => ManifestFiles.Single(objects, kind, name);

    public static string? Str(JsonNode? node) => ManifestFiles.Str(node);

    /// <summary>
    /// Fails on a mapping that names a key twice: YAML forbids it, and kubectl and the API server keep the last
    /// one silently, so a template that emits a key twice would lose a value without a word.
    /// </summary>
    public static void AssertNoDuplicateKeys(string yaml)
    {
        var parser = new Parser(new StringReader(yaml));
        // One frame per open collection: the keys seen (mappings only) and whether the next scalar is a key.
        var frames = new Stack<(HashSet<string>? Keys, bool ExpectKey)>();
        var document = 0;
        while (parser.MoveNext())
        {
            var e = parser.Current!;
            switch (e)
            {
                case DocumentStart:
                    document++;
                    break;
                case MappingStart:
                    Consumed(frames);
                    frames.Push((new HashSet<string>(StringComparer.Ordinal), true));
                    break;
                case SequenceStart:
                    Consumed(frames);
                    frames.Push((null, false));
                    break;
                case MappingEnd or SequenceEnd:
                    frames.Pop();
                    break;
                case Scalar scalar:
                    if (frames.Count > 0 && frames.Peek() is { Keys: { } keys, ExpectKey: true })
                    {
                        Assert.True(keys.Add(scalar.Value), $"document {document}: key '{scalar.Value}' appears twice in one mapping (line {scalar.Start.Line})");
                        frames.Pop();
                        frames.Push((keys, false));
                    }
                    else
                    {
                        Consumed(frames);
                    }

                    break;
            }
        }
    }

    // A value (scalar or collection) in a mapping is done: the next scalar there is a key again.
    private static void Consumed(Stack<(HashSet<string>? Keys, bool ExpectKey)> frames)
    {
        if (frames.Count > 0 && frames.Peek() is { Keys: { } keys, ExpectKey: false })
        {
            frames.Pop();
            frames.Push((keys, true));
        }
    }

    private static string Build()
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(RepoRoot, "tests", "helm", "build.sh"));
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(10)), "tests/helm/build.sh did not finish in 10 minutes");
        Assert.True(process.ExitCode == 0, $"tests/helm/build.sh exited {process.ExitCode}: {error.Result}");
        return output.Result.Trim();
    }
}
