using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Local.Query;
using Xunit;

namespace BatchRunner.Local.Tests;

/// <summary>
/// Reusing identical points across runs: a sweep that overlaps an earlier one runs only its new points, the table
/// answers as if every index had run, and a source that changed, another namespace or <c>reuse: false</c> runs again.
/// </summary>
public sealed class ReuseTests : IDisposable
{
    private readonly LocalRun _run = new();

    public void Dispose() => _run.Dispose();

    /// <summary>Each index records that it ran and writes one row computed from its parameter.</summary>
    private Core.Spec.BatchJob Sweep(string name, int points, string extra = "", string ns = "default")
    {
        var job = _run.Job(
            """echo "$BATCHRUNNER_JOB $BATCHRUNNER_INDEX" >> "$SCRATCH/ran"; n=$(echo "$BATCHRUNNER_PARAMS" | tr -dc 0-9); echo "{\"square\": $((n * n))}" > "$BATCHRUNNER_OUTPUT_DIR/r.jsonl"; echo log of $n""",
            $"sweep: {{grid: {{n: [{string.Join(", ", Enumerable.Range(1, points))}]}}, seed: 5}}\nparallelism: 2\n{extra}", name);
        return job with { Metadata = job.Metadata with { Namespace = ns } };
    }

    private string[] Ran() => File.Exists(Path.Combine(_run.Scratch, "ran")) ? [.. File.ReadAllLines(Path.Combine(_run.Scratch, "ran")).Order(StringComparer.Ordinal)] : [];

    private void ForgetRan() => File.Delete(Path.Combine(_run.Scratch, "ran"));

    [Fact]
    public async Task A_sweep_overlapping_an_earlier_one_by_half_runs_exactly_the_new_half_and_the_table_is_as_if_all_ran()
    {
        var first = Sweep("first", 4);
        Assert.Equal(RunPhase.Succeeded, (await _run.RunAsync(first)).Phase);
        ForgetRan();

        var second = Sweep("second", 8);
        var report = await _run.RunAsync(second);

        Assert.Equal((RunPhase.Succeeded, 8, 4, 4), (report.Phase, report.Succeeded, report.Reused, report.AttemptsStarted));
        Assert.Equal(["second 4", "second 5", "second 6", "second 7"], Ran());
        var ledger = _run.Ledger(second);
        var firstRun = RunIdentity.For(first);
        Assert.Equal(
            Enumerable.Range(0, 4).Select(i => $"batchjob=first/run={firstRun}/index={i}/attempt=1").Concat(Enumerable.Repeat<string?>(null, 4)),
            ledger.Select(r => r.ReusedFrom));
        Assert.All(ledger, r => Assert.Equal(("succeeded", 1L), (r.Status, r.OutputRows)));
        Assert.Equal(_run.Ledger(first).Select(r => r.PointKey), ledger.Take(4).Select(r => r.PointKey));

        using var table = ResultsQueryEngine.Open(_run.Store);
        Assert.Equal(
            Enumerable.Range(1, 8).Select(n => new object?[] { (long)n, (long)(n * n) }),
            table.Execute("SELECT n, square FROM results WHERE batchjob = 'second' ORDER BY n").Rows.Select(r => r.ToArray()));
        var reusedLog = Path.Combine(_run.Store, StoreLayout.AttemptPrefix("second", RunIdentity.For(second), 2, 1), "logs", "stdout.txt");
        Assert.Equal("log of 3", File.ReadAllText(reusedLog).Trim());
    }

    [Fact]
    public async Task Another_namespace_reuse_false_or_a_changed_field_run_every_index()
    {
        await _run.RunAsync(Sweep("first", 3));
        ForgetRan();

        var otherTenant = await _run.RunAsync(Sweep("second", 3, ns: "team-b"));
        var turnedOff = await _run.RunAsync(Sweep("third", 3, "reuse: false"));
        var otherArgs = await _run.RunAsync(Sweep("fourth", 3, "args: [other]"));

        Assert.Equal((0, 0, 0), (otherTenant.Reused, turnedOff.Reused, otherArgs.Reused));
        Assert.Equal(9, Ran().Length);
    }

    [Theory]
    [InlineData("changed")]
    [InlineData("deleted")]
    public async Task A_source_whose_files_changed_or_went_is_not_reused_the_index_runs_and_its_ledger_row_says_why(string what)
    {
        var first = Sweep("first", 2);
        await _run.RunAsync(first);
        var output = Path.Combine(_run.Store, StoreLayout.OutputPrefix("first", RunIdentity.For(first), 1, 1), "r.jsonl");
        if (what == "changed")
        {
            File.WriteAllText(output, "{\"square\": 999}\n");
        }
        else
        {
            File.Delete(output);
        }

        ForgetRan();

        var second = Sweep("second", 2);
        var report = await _run.RunAsync(second);

        Assert.Equal(1, report.Reused);
        Assert.Equal(["second 1"], Ran());
        var ran = _run.Ledger(second).Single(r => r.Index == 1);
        Assert.Null(ran.ReusedFrom);
        Assert.Equal($"the earlier result of this point at batchjob=first/run={RunIdentity.For(first)}/index=1/attempt=1 was deleted or changed since it was recorded, so the index ran", ran.Reason);
        using var table = ResultsQueryEngine.Open(_run.Store);
        Assert.Equal(4L, table.Execute("SELECT square FROM results WHERE batchjob = 'second' AND n = 2").Rows[0][0]);
    }

    [Fact]
    public async Task A_changed_program_file_is_a_new_point()
    {
        var script = Path.Combine(_run.Scratch, "work.sh");
        File.WriteAllText(script, "echo \"$BATCHRUNNER_JOB\" >> \"$SCRATCH/ran\"\n");
        Core.Spec.BatchJob Job(string name) => Core.Spec.BatchJobParser.Parse($$"""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: {{name}}}
            spec:
              command: [/bin/sh, work.sh]
              env: [{name: SCRATCH, value: "{{_run.Scratch}}"}]
            """).GetJobOrThrow();

        await _run.RunAsync(Job("first"));
        Assert.Equal(1, (await _run.RunAsync(Job("second"))).Reused);
        File.AppendAllText(script, "true\n");

        Assert.Equal(0, (await _run.RunAsync(Job("third"))).Reused);
        Assert.Equal(["first", "third"], Ran());
    }
}
