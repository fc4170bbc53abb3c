using System.Diagnostics;
using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary><c>batchrunner rerun</c> through <c>./batchrunner</c>: what it chooses, what it refuses, and what the table shows after.</summary>
public sealed class RerunCommandTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    /// <summary>Indexes 2 and 5 fail while $SCRATCH/broken exists; each index writes its value and which pass wrote it.</summary>
    private string FlakySpec() => _cli.WriteSpec("flaky.yaml", """
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: flaky}
        spec:
          command: ["/bin/sh", "-c", "echo $BATCHRUNNER_INDEX >> $SCRATCH/ran; case $BATCHRUNNER_INDEX in 2|5) [ -e $SCRATCH/broken ] && exit 3;; esac; echo \"{\\\"v\\\": $BATCHRUNNER_INDEX, \\\"pass\\\": \\\"$(cat $SCRATCH/pass 2>/dev/null || echo first)\\\"}\" > $BATCHRUNNER_OUTPUT_DIR/r.jsonl"]
          sweep: {grid: {size: [1, 2, 3, 4, 5, 6, 7, 8]}}
          parallelism: 2
        """);

    private async Task<CommandResult> FailedRunAsync()
    {
        File.WriteAllText(Path.Combine(_cli.Scratch, "broken"), "");
        var first = await _cli.RunAsync("run", FlakySpec());
        Assert.True(first.ExitCode == 1, first.ToString());
        File.Delete(Path.Combine(_cli.Scratch, "broken"));
        File.Delete(Path.Combine(_cli.Scratch, "ran"));
        return first;
    }

    [Fact]
    public async Task Rerun_failed_runs_only_the_failed_indexes_in_the_same_run_and_the_table_is_whole()
    {
        await FailedRunAsync();

        var rerun = await _cli.RunAsync("rerun", "flaky", "--failed");

        Assert.True(rerun.ExitCode == 0, rerun.ToString());
        Assert.Contains("Rerunning 2 of 8 indexes of flaky run r", rerun.Stderr, StringComparison.Ordinal);
        Assert.Contains("Succeeded, 8 of 8 indexes succeeded", rerun.Stdout, StringComparison.Ordinal);
        Assert.Equal(["2", "5"], File.ReadAllLines(Path.Combine(_cli.Scratch, "ran")).Order());
        var table = await _cli.RunAsync("query", "SELECT count(DISTINCT run) AS runs, count(*) AS attempts, count(*) FILTER (WHERE status = 'succeeded') AS ok, (SELECT count(*) FROM results) AS rows FROM indexes", "--format", "csv");
        Assert.Equal("runs,attempts,ok,rows\n1,10,8,8\n", table.Stdout);
    }

    [Fact]
    public async Task Rerun_by_index_or_by_a_condition_replaces_those_results_with_the_new_attempts()
    {
        Assert.Equal(0, (await _cli.RunAsync("run", FlakySpec())).ExitCode);
        File.WriteAllText(Path.Combine(_cli.Scratch, "pass"), "second");

        Assert.Equal(0, (await _cli.RunAsync("rerun", "flaky", "--index", "0,6-7")).ExitCode);
        var byWhere = await _cli.RunAsync("rerun", "flaky", "--where", "size = 4");
        Assert.True(byWhere.ExitCode == 0, byWhere.ToString());

        var results = await _cli.RunAsync("query", "SELECT v, pass FROM results ORDER BY v", "--format", "csv");
        Assert.Equal("v,pass\n0,second\n1,first\n2,first\n3,second\n4,first\n5,first\n6,second\n7,second\n", results.Stdout);
    }

    [Theory]
    [InlineData(new[] { "rerun", "flaky" }, "exactly one of --failed, --index 3,7-9 or --where")]
    [InlineData(new[] { "rerun", "flaky", "--failed", "--index", "1" }, "exactly one of --failed")]
    [InlineData(new[] { "rerun", "flaky", "--index", "8" }, "--index: index 8 is outside the run: it has 8 indexes (0 to 7)")]
    [InlineData(new[] { "rerun", "flaky", "--index", "x" }, "--index: \"x\" is not an index or a range of them")]
    [InlineData(new[] { "rerun", "flaky", "--where", "size = = 1" }, "--where is not a condition over the indexes table: Parser Error")]
    [InlineData(new[] { "rerun", "flaky", "--where", "size > 100" }, "--where selects no index of flaky run r")]
    [InlineData(new[] { "rerun", "flaky", "--where", "true; COPY indexes TO '/tmp/leak.csv'" }, "--where is not a condition over the indexes table")]
    [InlineData(new[] { "rerun", "other", "--failed" }, "no run of other in namespace default")]
    [InlineData(new[] { "rerun", "flaky", "--failed", "--run", "r000000000000" }, "flaky has no run r000000000000 in namespace default")]
    public async Task Bad_choices_exit_2_naming_what_is_wrong_and_change_nothing(string[] args, string message)
    {
        await FailedRunAsync();
        var before = await _cli.RunAsync("query", "SELECT \"index\", attempt, status FROM indexes ORDER BY ALL", "--format", "csv");

        var refused = await _cli.RunAsync(args);

        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Contains(message, refused.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_cli.Scratch, "ran")));
        Assert.Equal(before.Stdout, (await _cli.RunAsync("query", "SELECT \"index\", attempt, status FROM indexes ORDER BY ALL", "--format", "csv")).Stdout);
    }

    [Fact]
    public async Task A_run_that_succeeded_has_no_failed_indexes_to_rerun_and_a_running_one_is_not_rerun()
    {
        Assert.Equal(0, (await _cli.RunAsync("run", FlakySpec())).ExitCode);
        var none = await _cli.RunAsync("rerun", "flaky", "--failed");
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("has no failed indexes (Succeeded, 8 of 8 succeeded)", none.Stderr, StringComparison.Ordinal);

        var slow = _cli.WriteSpec("slow.yaml", "apiVersion: batchrunner.io/v1alpha1\nkind: BatchJob\nmetadata: {name: slow}\nspec:\n  command: [sleep, \"30\"]\n");
        using var running = _cli.Start("run", slow);
        var stopwatch = Stopwatch.StartNew();
        CommandResult busy;
        do
        {
            await Task.Delay(200);
            busy = await _cli.RunAsync("rerun", "slow", "--index", "0");
        }
        while (busy.Stderr.Contains("no run of slow", StringComparison.Ordinal) && stopwatch.Elapsed < TimeSpan.FromSeconds(60));

        Assert.Equal(2, busy.ExitCode);
        Assert.Contains("slow run r", busy.Stderr, StringComparison.Ordinal);
        Assert.Contains("is still running; wait for it to finish, or `batchrunner cancel slow` first", busy.Stderr, StringComparison.Ordinal);
        running.Kill(entireProcessTree: true);
    }
}
