using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary>Reuse of identical points through <c>./batchrunner</c>: run, <c>--no-reuse</c>, and <c>explain</c> naming why a point missed.</summary>
public sealed class ReuseCommandTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    private string Spec(string name, string extra = "", string points = "1, 2, 3, 4") => _cli.WriteSpec(name + ".yaml", Yaml(name, extra, points));

    private static string Yaml(string name, string extra = "", string points = "1, 2, 3, 4") => $$"""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: {{name}}}
        spec:
          command: ["/bin/sh", "-c", "echo $BATCHRUNNER_JOB >> $SCRATCH/ran; echo {\\\"n2\\\": $(( $(echo $BATCHRUNNER_PARAMS | tr -dc 0-9) * 2 ))} > $BATCHRUNNER_OUTPUT_DIR/r.jsonl"]
          sweep: {grid: {n: [{{points}}]}, seed: 3}
        {{extra}}
        """;

    private int Ran(string name) => File.Exists(Path.Combine(_cli.Scratch, "ran")) ? File.ReadAllLines(Path.Combine(_cli.Scratch, "ran")).Count(l => l == name) : 0;

    [Fact]
    public async Task A_sweep_grown_by_new_points_runs_only_those_and_no_reuse_runs_them_all()
    {
        Assert.Equal(0, (await _cli.RunAsync("run", Spec("small"))).ExitCode);

        var grown = await _cli.RunAsync("run", Spec("grown", points: "1, 2, 3, 4, 5, 6, 7, 8"));
        var again = await _cli.RunAsync("run", "--no-reuse", Spec("fresh", points: "1, 2, 3, 4, 5, 6, 7, 8"));

        Assert.True(grown.ExitCode == 0, grown.ToString());
        Assert.Contains("(4 attempts in ", grown.Stdout, StringComparison.Ordinal);
        Assert.Contains("4 indexes reused from earlier runs)", grown.Stdout, StringComparison.Ordinal);
        Assert.Equal((4, 8), (Ran("grown"), Ran("fresh")));
        Assert.DoesNotContain("reused", again.Stdout, StringComparison.Ordinal);
        var table = await _cli.RunAsync("query", "SELECT batchjob, sum(n2) AS total, count(*) AS rows FROM results GROUP BY ALL ORDER BY ALL", "--format", "csv");
        Assert.Equal("batchjob,total,rows\nfresh,72,8\ngrown,72,8\nsmall,20,4\n", table.Stdout);
        var sources = await _cli.RunAsync("query", "SELECT count(reused_from) AS reused, count(DISTINCT point_key) AS points FROM indexes WHERE batchjob = 'grown'", "--format", "csv");
        Assert.Equal("reused,points\n4,8\n", sources.Stdout);
    }

    public static TheoryData<string, string> Differences => new()
    {
        { "  args: [other]", "args" },
        { "  env: [{name: MODE, value: x}]", "env" },
        { "  image: example/other:1", "image" },
        { "  resources: {cpu: 500m, memory: 1Gi}", "resources" },
        { "  results: {format: csv}", "results.format" },
        { "SEED", "seed" },
        { "POINTS", "params" },
    };

    [Theory]
    [MemberData(nameof(Differences))]
    public async Task Explain_names_the_one_field_that_kept_an_index_from_reusing_the_nearest_earlier_point(string change, string field)
    {
        Assert.Equal(0, (await _cli.RunAsync("run", Spec("base"))).ExitCode);
        var variant = change switch
        {
            "SEED" => Yaml("variant").Replace("seed: 3", "seed: 4", StringComparison.Ordinal),
            "POINTS" => Yaml("variant", points: "11, 12, 13, 14"),
            _ => Yaml("variant", change),
        };
        Assert.Equal(0, (await _cli.RunAsync("run", _cli.WriteSpec("variant.yaml", variant))).ExitCode);

        var explained = await _cli.RunAsync("explain", "variant", "--index", "2");

        Assert.True(explained.ExitCode == 0, explained.ToString());
        Assert.Contains("variant index 2 (run r", explained.Stdout, StringComparison.Ordinal);
        Assert.Contains($"  differs in: {field}\n", explained.Stdout, StringComparison.Ordinal);
        Assert.Contains("nearest earlier point: batchjob=base/run=r", explained.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_says_where_a_reused_index_came_from_and_refuses_an_index_outside_the_run()
    {
        await _cli.RunAsync("run", Spec("base"));
        await _cli.RunAsync("run", Spec("copy"));

        var reused = await _cli.RunAsync("explain", "copy", "--index", "3");
        var outside = await _cli.RunAsync("explain", "copy", "--index", "4");

        Assert.Matches(@"^copy index 3 \(run r[0-9a-f]{11}\): reused the result of batchjob=base/run=r[0-9a-f]{11}/index=3/attempt=1 \(attempt 1\); it did not run\n$", reused.Stdout);
        Assert.Equal(2, outside.ExitCode);
        Assert.Contains("explain: --index: index 4 is outside the run: it has 4 indexes (0 to 3)", outside.Stderr, StringComparison.Ordinal);
    }
}
