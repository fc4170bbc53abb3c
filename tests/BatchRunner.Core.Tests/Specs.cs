using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Tests;

/// <summary>Builds and parses BatchJob documents for the tests.</summary>
internal static class Specs
{
    /// <summary>
    /// A minimal valid BatchJob (backend local, one command) in YAML, with <paramref name="spec"/> appended under
    /// <c>spec:</c>; its lines are written indented by two spaces, as they would be in the document.
    /// </summary>
    public static string Yaml(string spec = "", string name = "sweep") =>
        $"""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata:
          name: {name}
        spec:
          command: [python, sim.py]

        """ + (spec.Length == 0 || spec.EndsWith('\n') ? spec : spec + "\n");

    /// <summary>A job with a sweep: <paramref name="sweep"/> is the body of <c>spec.sweep</c>, indented by four spaces.</summary>
    public static string SweepYaml(string sweep) => Yaml("  sweep:\n" + sweep);

    /// <summary>Parses a document that must be valid, failing with its errors otherwise.</summary>
    public static BatchJob Valid(string text)
    {
        var result = BatchJobParser.Parse(text);
        Assert.True(result.IsValid, "expected a valid document, got:\n" + string.Join("\n", result.Errors));
        return result.Job!;
    }

    /// <summary>Parses a document that must be invalid and returns its errors as <see cref="SpecError.ToString"/> gives them.</summary>
    public static string[] Errors(string text) => Errors(BatchJobParser.Parse(text));

    public static string[] Errors(ParseResult result)
    {
        Assert.False(result.IsValid);
        Assert.Null(result.Job);
        return result.Errors.Select(e => e.ToString()).ToArray();
    }

    /// <summary>A file of the corpus copied beside the test assembly, e.g. <c>Corpus/valid/queue-sweep.yaml</c>.</summary>
    public static string CorpusPath(string relativePath) => Path.Combine(AppContext.BaseDirectory, "Corpus", relativePath);

    public static string CorpusText(string relativePath) => File.ReadAllText(CorpusPath(relativePath));
}
