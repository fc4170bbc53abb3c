using System.Text.Json;
using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary>
/// What <c>batchrunner query</c> prints for every kind of DuckDB value, and a run compacted and queried again, through
/// <c>./batchrunner</c> (the Native AOT build, where nothing may fall back on reflection).
/// </summary>
public sealed class QueryOutputTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    private const string NestedValues =
        "SELECT [1, 2, 3] AS ints, [0.5, 1e-7] AS reals, ['a', 'b \"q\"'] AS texts, [[1, 2], [3]] AS nested, " +
        "{'name': 'x', 'n': 2, 'tags': ['t']} AS point, MAP {'k': 1.5, 'j': 2} AS weights, CAST(NULL AS INTEGER[]) AS missing";

    [Fact]
    public async Task Lists_structs_and_maps_print_as_JSON_values_in_json_format()
    {
        var result = await _cli.RunAsync("query", "--format", "json", NestedValues);

        Assert.True(result.ExitCode == 0, result.ToString());
        var row = JsonDocument.Parse(result.Stdout).RootElement.EnumerateArray().Single();
        Assert.Equal("[1,2,3]", row.GetProperty("ints").GetRawText());
        Assert.Equal([0.5, 1e-7], row.GetProperty("reals").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(["a", "b \"q\""], row.GetProperty("texts").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("[[1,2],[3]]", row.GetProperty("nested").GetRawText());
        Assert.Equal("x", row.GetProperty("point").GetProperty("name").GetString());
        Assert.Equal(2, row.GetProperty("point").GetProperty("n").GetInt32());
        Assert.Equal("t", row.GetProperty("point").GetProperty("tags")[0].GetString());
        Assert.Equal(1.5, row.GetProperty("weights").GetProperty("k").GetDouble());
        Assert.Equal(JsonValueKind.Null, row.GetProperty("missing").ValueKind);
    }

    [Fact]
    public async Task Nested_values_are_one_quoted_JSON_cell_in_csv_and_inline_in_the_table()
    {
        var csv = await _cli.RunAsync("query", "--format", "csv", "SELECT [1, 2] AS ints, {'a': 'x,y'} AS point");
        var table = await _cli.RunAsync("query", "SELECT [1, 2] AS ints, {'a': 'x,y'} AS point");

        Assert.True(csv.ExitCode == 0, csv.ToString());
        Assert.Equal(["ints,point", "\"[1,2]\",\"{\"\"a\"\":\"\"x,y\"\"}\""], csv.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains("[1,2]", table.Stdout, StringComparison.Ordinal);
        Assert.Contains("{\"a\":\"x,y\"}", table.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_answers_the_same_before_and_after_compact()
    {
        var spec = _cli.WriteSpec("rows.yaml", """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: rows}
            spec:
              command: [/bin/sh, -c, 'echo "{\"x\": $BATCHRUNNER_INDEX, \"tag\": \"t$BATCHRUNNER_INDEX\"}" > $BATCHRUNNER_OUTPUT_DIR/out.jsonl']
              parallelism: 2
              sweep: {grid: {rate: [0.5, 0.9], policy: [fifo, lifo]}, repeats: 2}
            """);
        const string Query = "SELECT rate, policy, count(*) AS n, sum(x) AS total, list(tag ORDER BY tag) AS tags FROM results GROUP BY ALL ORDER BY ALL";

        var run = await _cli.RunAsync("run", spec, "--no-compact");
        var raw = await _cli.RunAsync("query", "--format", "json", Query);
        var compact = await _cli.RunAsync("compact", "rows");
        var compacted = await _cli.RunAsync("query", "--format", "json", Query);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.True(compact.ExitCode == 0, compact.ToString());
        Assert.True(raw.ExitCode == 0, raw.ToString());
        Assert.Equal(4, JsonDocument.Parse(raw.Stdout).RootElement.GetArrayLength());
        Assert.Equal(raw.Stdout, compacted.Stdout);
        Assert.Single(Directory.GetFiles(_cli.Store, "*.parquet", SearchOption.AllDirectories), f => f.Contains("results", StringComparison.Ordinal));
    }
}
