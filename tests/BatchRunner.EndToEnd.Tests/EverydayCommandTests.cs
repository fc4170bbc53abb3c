using System.Text.Json;
using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary>
/// The commands a researcher reaches for every day, through <c>./batchrunner</c>: list, status --json, validate
/// --show-indexes, delete, and the warnings after a run whose indexes wrote nothing or wrote lines that are not records.
/// </summary>
public sealed class EverydayCommandTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    /// <summary>Index 1 fails; the others write their value.</summary>
    private string Spec(string name, int completions = 3) => _cli.WriteSpec($"{name}.yaml", $$"""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: {{name}}}
        spec:
          command: ["/bin/sh", "-c", "[ $BATCHRUNNER_INDEX = 1 ] && echo broken >&2 && exit 3; echo \"{\\\"v\\\": $BATCHRUNNER_INDEX}\" > $BATCHRUNNER_OUTPUT_DIR/r.jsonl"]
          completions: {{completions}}
        """);

    [Fact]
    public async Task List_shows_each_batchjob_with_its_latest_run_and_json_gives_every_run()
    {
        await _cli.RunAsync("run", Spec("alpha"));
        await _cli.RunAsync("run", Spec("alpha", completions: 4));
        await _cli.RunAsync("run", Spec("beta"));

        var table = await _cli.RunAsync("list");
        var json = await _cli.RunAsync("list", "--json");

        Assert.Equal(0, table.ExitCode);
        Assert.Matches(@"(?m)^alpha\s+default\s+2\s+r\w+\s+Failed\s+3\s+1\s+4\s", table.Stdout);
        Assert.Matches(@"(?m)^beta\s+default\s+1\s+r\w+\s+Failed\s+2\s+1\s+3\s", table.Stdout);
        using var document = JsonDocument.Parse(json.Stdout);
        var batchJobs = document.RootElement.GetProperty("batchJobs");
        Assert.Equal(["alpha", "beta"], batchJobs.EnumerateArray().Select(b => b.GetProperty("name").GetString()));
        Assert.Equal([3, 4], batchJobs[0].GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("total").GetInt32()));
        Assert.Equal("Failed", batchJobs[1].GetProperty("runs")[0].GetProperty("phase").GetString());
    }

    [Fact]
    public async Task Status_json_names_each_failed_index_with_its_attempts_and_reason()
    {
        await _cli.RunAsync("run", Spec("alpha"));

        var status = await _cli.RunAsync("status", "alpha", "--json");

        Assert.Equal(0, status.ExitCode);
        using var document = JsonDocument.Parse(status.Stdout);
        var run = document.RootElement.GetProperty("batchJobs")[0].GetProperty("runs")[0];
        Assert.Equal((2, 1), (run.GetProperty("succeeded").GetInt32(), run.GetProperty("failed").GetInt32()));
        var failed = Assert.Single(run.GetProperty("failedIndexes").EnumerateArray());
        Assert.Equal((1, 1), (failed.GetProperty("index").GetInt32(), failed.GetProperty("attempts").GetInt32()));
        Assert.Contains("exit code 3", failed.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_shows_every_index_with_its_repeat_seed_and_parameters()
    {
        var spec = _cli.WriteSpec("grid.yaml", """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: grid}
            spec:
              command: ["/bin/true"]
              sweep: {grid: {rho: [0.5, 0.9], policy: [fifo, "l\u001b[31mifo"]}, repeats: 2, seed: 7}
            """);

        var shown = await _cli.RunAsync("validate", spec, "--show-indexes");

        Assert.True(shown.ExitCode == 0, shown.ToString());
        var lines = shown.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^INDEX\s+REPEAT\s+SEED\s+policy\s+rho$", lines[1]);
        Assert.Equal(1 + 1 + 8, lines.Length);
        Assert.Matches(@"^\s*0\s+0\s+-?\d+\s+fifo\s+0\.5$", lines[2]);
        // A value that would act on the terminal is shown escaped.
        Assert.Contains(@"l\x1b[31mifo", shown.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b", shown.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delete_removes_a_runs_files_and_state_together_and_refuses_a_running_one()
    {
        await _cli.RunAsync("run", Spec("alpha"));
        var slow = _cli.WriteSpec("slow.yaml", """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: slow}
            spec:
              command: ["/bin/sh", "-c", "touch $SCRATCH/started; sleep 30"]
            """);
        using (var running = _cli.Start("run", slow))
        {
            await Cli.WaitForAsync(() => File.Exists(Path.Combine(_cli.Scratch, "started")), "the slow run did not start");

            var refused = await _cli.RunAsync("delete", "slow");
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("is running", refused.Stderr, StringComparison.Ordinal);
            Assert.Contains("Nothing was deleted", refused.Stderr, StringComparison.Ordinal);
            Assert.True(Directory.Exists(Path.Combine(_cli.Store, "batchjob=slow")));
            running.Kill(entireProcessTree: true);
            await running.WaitForExitAsync();
        }

        var deleted = await _cli.RunAsync("delete", "alpha");
        var unknown = await _cli.RunAsync("delete", "alpha");
        var rows = await _cli.RunAsync("query", "SELECT count(*) AS n FROM indexes WHERE batchjob = 'alpha'", "--format", "csv");

        Assert.True(deleted.ExitCode == 0, deleted.ToString());
        Assert.Matches(@"^deleted alpha run r\w+ \(Failed, 2 of 3 indexes succeeded\)\n$", deleted.Stdout);
        Assert.False(Directory.Exists(Path.Combine(_cli.Store, "batchjob=alpha")));
        Assert.DoesNotContain("alpha", (await _cli.RunAsync("list")).Stdout, StringComparison.Ordinal);
        Assert.Equal("n\n0\n", rows.Stdout);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no run of alpha in namespace default", unknown.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_whose_indexes_wrote_nothing_or_lines_that_are_not_records_ends_with_warnings()
    {
        var spec = _cli.WriteSpec("sloppy.yaml", """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: sloppy}
            spec:
              command: ["/bin/sh", "-c", "case $BATCHRUNNER_INDEX in 0) echo '{\"v\": 0}' > $BATCHRUNNER_OUTPUT_DIR/r.jsonl;; 1) ;; *) printf '{\"v\": 2}\\nnot json\\n' > $BATCHRUNNER_OUTPUT_DIR/r.jsonl;; esac"]
              completions: 3
            """);

        var run = await _cli.RunAsync("run", spec);
        var clean = await _cli.RunAsync("run", Spec("alpha"));

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("  warning: 1 of 3 succeeded attempts wrote no output (batchrunner query", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("  warning: 1 output line(s) in 1 index(es) were not records and are not in the results table", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("warning:", clean.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("logs", "--index", "0", "--results")]
    [InlineData("cost", "--results")]
    [InlineData("delete", "--store")]
    [InlineData("explain", "--index", "0", "--results")]
    public async Task A_name_that_could_not_be_a_batchjobs_never_reaches_a_store_path(string command, params string[] rest)
    {
        // A folder beside the store that a path built from the name would reach.
        Directory.CreateDirectory(Path.Combine(_cli.Store, "outside", "run=r1", "index=0", "attempt=1", "logs"));

        var refused = await _cli.RunAsync([command, "../outside", .. rest, Path.Combine(_cli.Store, "inner")]);

        Assert.Equal(2, refused.ExitCode);
        Assert.Contains($"{command}: \"../outside\" is not a BatchJob name (lowercase letters, digits and '-'", refused.Stderr, StringComparison.Ordinal);
    }
}
