using System.Text.RegularExpressions;
using BatchRunner.Core.Runs;

namespace BatchRunner.Core.Tests;

public class RunIdentityTests
{
    /// <summary>A job that sets every spec field, one per line, so that a test can change exactly one.</summary>
    private static readonly string Job = Specs.Yaml("""
          image: python:3.12
          args: [--fast]
          env: [{name: MODE, value: fast}]
          resources: {cpu: 500m, memory: 1Gi}
          parallelism: 2
          sweep: {grid: {rate: [0.5, 0.9]}, repeats: 2, seed: 7}
          retry: {attempts: 3, backoffSeconds: 5, maxBackoffSeconds: 60}
          timeoutSeconds: 600
          deadlineSeconds: 3600
          backend: local
          queue: research
          priority: 5
          reuse: false
          budget: {usd: 12.5}
          results: {uri: "file:///tmp/results", format: jsonl}
        """);

    private static string IdOf(string yaml) => RunIdentity.For(Specs.Valid(yaml));

    [Fact]
    public void The_same_document_gives_the_same_run_id()
    {
        Assert.Equal(IdOf(Job), IdOf(Job));
        Assert.Matches(new Regex("^r[0-9a-f]{11}$"), IdOf(Job));
    }

    [Theory]
    [InlineData("name: sweep", "name: sweep-2")]
    [InlineData("metadata:\n", "metadata:\n  namespace: lab\n")]
    [InlineData("command: [python, sim.py]", "command: [python3, sim.py]")]
    [InlineData("image: python:3.12", "image: python:3.13")]
    [InlineData("args: [--fast]", "args: [--slow]")]
    [InlineData("value: fast", "value: slow")]
    [InlineData("cpu: 500m", "cpu: 600m")]
    [InlineData("memory: 1Gi", "memory: 2Gi")]
    [InlineData("rate: [0.5, 0.9]", "rate: [0.5, 0.8]")]
    [InlineData("rate: [0.5, 0.9]", "rate: [0.9, 0.5]")]
    [InlineData("repeats: 2", "repeats: 3")]
    [InlineData("seed: 7", "seed: 8")]
    [InlineData("file:///tmp/results", "file:///tmp/other")]
    [InlineData("format: jsonl", "format: csv")]
    public void Changing_the_name_or_what_the_run_computes_changes_the_run_id(string from, string to)
    {
        var changed = Job.Replace(from, to, StringComparison.Ordinal);

        Assert.NotEqual(Job, changed);
        Assert.NotEqual(IdOf(Job), IdOf(changed));
    }

    [Theory]
    [InlineData("parallelism: 2", "parallelism: 3")]
    [InlineData("attempts: 3", "attempts: 4")]
    [InlineData("backoffSeconds: 5", "backoffSeconds: 6")]
    [InlineData("maxBackoffSeconds: 60", "maxBackoffSeconds: 61")]
    [InlineData("timeoutSeconds: 600", "timeoutSeconds: 601")]
    [InlineData("deadlineSeconds: 3600", "deadlineSeconds: 3601")]
    [InlineData("backend: local", "backend: aws-batch")]
    [InlineData("queue: research", "queue: urgent")]
    [InlineData("priority: 5", "priority: -3")]
    [InlineData("  queue: research\n  priority: 5\n", "")]
    public void Changing_only_how_the_run_executes_keeps_the_run_id_so_it_resumes(string from, string to)
    {
        var changed = Job.Replace(from, to, StringComparison.Ordinal);

        Assert.NotEqual(Job, changed);
        Assert.Equal(IdOf(Job), IdOf(changed));
    }

    [Fact]
    public void Whitespace_comments_and_flow_or_block_style_do_not_change_the_run_id()
    {
        var restyled = Job
            .Replace("args: [--fast]", "args:\n    - \"--fast\"   # quoted, block style", StringComparison.Ordinal)
            .Replace("parallelism: 2", "parallelism:     2\n\n", StringComparison.Ordinal)
            .Replace("kind: BatchJob", "# a comment\nkind: 'BatchJob'", StringComparison.Ordinal);

        Assert.NotEqual(Job, restyled);
        Assert.Equal(IdOf(Job), IdOf(restyled));
    }

    [Fact]
    public void The_same_job_as_yaml_json_or_kubectl_output_has_one_run_id()
    {
        var ids = new[] { "queue-sweep.yaml", "queue-sweep.json", "queue-sweep.kubectl.yaml" }
            .Select(file => IdOf(Specs.CorpusText("valid/" + file)))
            .ToArray();

        Assert.Single(ids.Distinct());
        Assert.NotEqual(IdOf(Job), ids[0]);
    }

    [Fact]
    public void The_execution_only_fields_are_exactly_those_the_run_id_leaves_out()
    {
        var job = Specs.Valid(Job.Replace("backend: local", "backend: kubernetes", StringComparison.Ordinal));
        using var full = System.Text.Json.JsonDocument.Parse(RunIdentity.SpecJson(job));
        using var reset = System.Text.Json.JsonDocument.Parse(RunIdentity.SpecJson(job with { Spec = RunIdentity.ResultsDefining(job.Spec) }));
        var after = reset.RootElement.GetProperty("Spec");

        var differing = full.RootElement.GetProperty("Spec").EnumerateObject()
            .Where(p => !after.TryGetProperty(p.Name, out var reset) || reset.GetRawText() != p.Value.GetRawText())
            .Select(p => char.ToLowerInvariant(p.Name[0]) + p.Name[1..])
            .ToHashSet();

        Assert.Equal(RunIdentity.ExecutionOnlyFields.Order(), differing.Order());
    }

    [Fact]
    public void The_canonical_document_reads_back_as_the_same_job()
    {
        var job = Specs.Valid(Job);
        var (text, hash) = BatchRunner.Core.Spec.BatchJobDocument.Write(job);
        var again = Specs.Valid(text);

        Assert.Equal(RunIdentity.SpecJson(job), RunIdentity.SpecJson(again));
        Assert.Equal(hash, BatchRunner.Core.Spec.BatchJobDocument.Write(again).ContentHash);
    }

    [Fact]
    public void An_empty_env_value_is_left_out_of_the_canonical_document_and_reads_back_empty()
    {
        var job = Specs.Valid(Specs.Yaml("  env: [{name: EMPTY, value: \"\"}, {name: FULL, value: x}]\n"));
        var (text, _) = BatchRunner.Core.Spec.BatchJobDocument.Write(job);

        Assert.Contains("{\"name\":\"EMPTY\"}", text, StringComparison.Ordinal);
        Assert.Contains("{\"name\":\"FULL\",\"value\":\"x\"}", text, StringComparison.Ordinal);
        Assert.Equal(RunIdentity.SpecJson(job), RunIdentity.SpecJson(Specs.Valid(text)));
    }
}
