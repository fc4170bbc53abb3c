using BatchRunner.Core.Runs;
using BatchRunner.Local.Query;
using Xunit;

namespace BatchRunner.Local.Tests;

public sealed class QueryEngineTests : IDisposable
{
    private readonly LocalRun _run = new();

    public void Dispose() => _run.Dispose();

    [Fact]
    public async Task Results_have_one_row_per_written_row_with_the_parameters_as_columns()
    {
        var job = _run.Job(
            "echo \"{\\\"y\\\": $BATCHRUNNER_INDEX, \\\"label\\\": \\\"i$BATCHRUNNER_INDEX\\\"}\" > \"$BATCHRUNNER_OUTPUT_DIR/results.jsonl\"",
            "parallelism: 2\nsweep:\n  grid: {a: [1, 2], b: [x, y]}");
        await _run.RunAsync(job);

        using var engine = ResultsQueryEngine.Open(_run.Store);
        var result = engine.Execute("SELECT a, b, y, label FROM results ORDER BY \"index\"");

        Assert.Equal(["a", "b", "y", "label"], result.Columns);
        Assert.Equal(
            [(1L, "x", 0L, "i0"), (1L, "y", 1L, "i1"), (2L, "x", 2L, "i2"), (2L, "y", 3L, "i3")],
            result.Rows.Select(r => ((long)r[0]!, (string)r[1]!, (long)r[2]!, (string)r[3]!)));
    }

    [Fact]
    public async Task A_failed_attempts_partial_output_never_reaches_the_results_table()
    {
        var job = _run.Job(
            "m=\"$SCRATCH/tried.$BATCHRUNNER_INDEX\"; if [ -f \"$m\" ]; then echo '{\"value\": \"good\"}' > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"; exit 0; fi; " +
            "touch \"$m\"; echo '{\"value\": \"partial\"}' > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"; exit 1",
            "completions: 3\nretry: {attempts: 2, backoffSeconds: 0}");
        await _run.RunAsync(job);

        using var engine = ResultsQueryEngine.Open(_run.Store);

        Assert.Equal(["good", "good", "good"], engine.Execute("SELECT value FROM results ORDER BY \"index\"").Rows.Select(r => (string)r[0]!));
        Assert.Equal(
            [(1L, "failed"), (2L, "succeeded")],
            engine.Execute("SELECT attempt, status FROM indexes WHERE \"index\" = 0 ORDER BY attempt").Rows.Select(r => ((long)r[0]!, (string)r[1]!)));
    }

    [Fact]
    public async Task Csv_outputs_are_read_as_well_when_the_spec_says_csv()
    {
        var job = _run.Job(
            "printf 'metric,value\\nm%s,%s\\n' $BATCHRUNNER_INDEX $BATCHRUNNER_INDEX > \"$BATCHRUNNER_OUTPUT_DIR/out.csv\"",
            "completions: 3\nresults: {format: csv}");
        await _run.RunAsync(job);

        using var engine = ResultsQueryEngine.Open(_run.Store);

        Assert.Equal(
            [("m0", 0L), ("m1", 1L), ("m2", 2L)],
            engine.Execute("SELECT metric, value::BIGINT FROM results ORDER BY metric").Rows.Select(r => ((string)r[0]!, (long)r[1]!)));
    }

    [Fact]
    public async Task An_output_column_named_like_a_parameter_keeps_its_value_under_a_prefixed_name()
    {
        var job = _run.Job("echo '{\"rate\": 99, \"seed\": 5}' > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"", "sweep:\n  grid: {rate: [0.5]}");
        await _run.RunAsync(job);

        using var engine = ResultsQueryEngine.Open(_run.Store);
        var result = engine.Execute("SELECT rate, output_rate, output_seed FROM results");

        Assert.Equal((0.5, 99L, 5L), ((double)result.Rows[0][0]!, (long)result.Rows[0][1]!, (long)result.Rows[0][2]!));
    }

    [Fact]
    public void An_empty_store_answers_with_empty_tables_rather_than_an_error()
    {
        using var engine = ResultsQueryEngine.Open(_run.Store);

        Assert.Equal(0L, engine.Execute("SELECT count(*) FROM results").Rows[0][0]);
        Assert.Equal(0L, engine.Execute("SELECT count(*) FROM indexes").Rows[0][0]);
        Assert.Contains("exit_code", engine.Execute("SELECT * FROM indexes").Columns);
    }

    [Fact]
    public async Task Ledger_timestamps_are_typed_so_durations_can_be_computed_in_sql()
    {
        var job = _run.Job("sleep 0.2", "completions: 1");
        await _run.RunAsync(job);

        using var engine = ResultsQueryEngine.Open(_run.Store);
        var row = engine.Execute("SELECT typeof(started_at), date_diff('millisecond', started_at, finished_at) FROM indexes").Rows[0];

        Assert.Equal("TIMESTAMP", row[0]);
        Assert.InRange((long)row[1]!, 150, 10_000);
        Assert.Equal(RunIdentity.For(job), engine.Execute("SELECT run FROM indexes").Rows[0][0]);
    }
}
