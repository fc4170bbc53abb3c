using System.Diagnostics;
using System.Globalization;
using Xunit;

namespace BatchRunner.EndToEnd.Tests;

public sealed class ExitCodeTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    private const string Header = "apiVersion: batchrunner.io/v1alpha1\nkind: BatchJob\nmetadata: {name: e2e}\n";

    [Fact]
    public async Task An_invalid_spec_exits_2_and_names_every_field_that_is_wrong()
    {
        var spec = _cli.WriteSpec("bad.yaml", Header + "spec:\n  command: [\"true\"]\n  completions: 3\n  parallelism: 0\n  retry: {attempts: 0}\n  colour: blue\n");

        var result = await _cli.RunAsync("run", spec);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"{spec}: spec.colour: unknown field", result.Stderr, StringComparison.Ordinal);
        Assert.Contains($"{spec}: spec.parallelism: must be >= 1, got 0", result.Stderr, StringComparison.Ordinal);
        Assert.Contains($"{spec}: spec.retry.attempts: must be >= 1, got 0", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("3 errors; nothing was run", result.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_cli.Store, "batchjob=e2e")));
    }

    [Fact]
    public async Task Malformed_yaml_from_standard_input_exits_2_with_its_line()
    {
        var result = await _cli.RunWithInputAsync("spec: [unclosed\n", "run", "-");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("-: not valid YAML or JSON at line", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_command_that_does_not_exist_exits_2_before_anything_runs()
    {
        var spec = _cli.WriteSpec("missing.yaml", Header + "spec: {command: [definitely-not-installed], completions: 2}\n");

        var result = await _cli.RunAsync("run", spec);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("spec.command[0]: \"definitely-not-installed\" was not found on PATH", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_job_with_a_failed_index_exits_1_and_lists_it()
    {
        var spec = _cli.WriteSpec("fails.yaml", Header + "spec:\n  command: [/bin/sh, -c, 'test $BATCHRUNNER_INDEX != 2 || { echo bad input >&2; exit 9; }']\n  completions: 4\n");

        var result = await _cli.RunAsync("run", spec);
        var status = await _cli.RunAsync("status", "e2e");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("3 of 4 indexes succeeded, 1 failed", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("index 2 failed after 1 attempt(s): exit code 9: bad input", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("index 2 after 1 attempt(s): exit code 9: bad input", status.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_query_exits_2_with_duckdbs_message()
    {
        var result = await _cli.RunAsync("query", "SELECT nonsense FROM results");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("nonsense", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancel_from_another_process_stops_the_run_with_exit_130()
    {
        var spec = _cli.WriteSpec("slow.yaml", Header + "spec: {command: [sleep, \"60\"], completions: 3}\n");
        using var running = _cli.Start("run", spec);
        running.StandardInput.Close();
        var stdout = running.StandardOutput.ReadToEndAsync();
        var stderr = running.StandardError.ReadToEndAsync();
        await WaitForAsync(() => Directory.Exists(Path.Combine(_cli.Store, "batchjob=e2e")));

        var cancel = await _cli.RunAsync("cancel", "e2e");
        await running.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        Assert.Equal(130, running.ExitCode);
        Assert.Contains("Cancelled", await stdout, StringComparison.Ordinal);
        _ = await stderr;
    }

    internal static async Task WaitForAsync(Func<bool> condition, double seconds = 60)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "condition not reached in time");
            await Task.Delay(25);
        }
    }
}

public sealed class KillAndResumeTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public async Task After_kill_9_the_same_run_command_reruns_only_indexes_that_had_not_succeeded()
    {
        // Even indexes finish at once; odd ones sleep until a go file exists, so the kill lands with work in flight.
        var spec = _cli.WriteSpec("resume.yaml", """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: resume}
            spec:
              command: [/bin/sh, -c, 'echo "$BATCHRUNNER_INDEX $$" >> "$SCRATCH/ran"; if [ $((BATCHRUNNER_INDEX % 2)) = 1 ] && [ ! -f "$SCRATCH/go" ]; then sleep 60; fi']
              completions: 10
              parallelism: 2
            """);
        var ran = Path.Combine(_cli.Scratch, "ran");
        using var runner = _cli.Start("run", spec);
        runner.StandardInput.Close();
        _ = runner.StandardOutput.ReadToEndAsync();
        _ = runner.StandardError.ReadToEndAsync();
        await ExitCodeTests.WaitForAsync(() => File.Exists(ran) && File.ReadAllLines(ran).Length >= 4);
        var succeededBeforeKill = SucceededIndexes();

        // ./batchrunner execs dotnet, so this pid is the runner itself.
        Process.Start("kill", ["-9", runner.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
        await runner.WaitForExitAsync();
        var orphans = File.ReadAllLines(ran).Select(l => int.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture)).Where(IsAlive).ToList();
        File.WriteAllText(Path.Combine(_cli.Scratch, "go"), "");
        var resumed = await _cli.RunAsync("run", spec);

        Assert.Equal(137, runner.ExitCode);
        Assert.NotEmpty(succeededBeforeKill);
        Assert.NotEmpty(orphans);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("10 of 10 indexes succeeded", resumed.Stdout, StringComparison.Ordinal);
        var runsPerIndex = File.ReadAllLines(ran).GroupBy(l => int.Parse(l.Split(' ')[0], CultureInfo.InvariantCulture)).ToDictionary(g => g.Key, g => g.Count());
        Assert.All(succeededBeforeKill, index => Assert.Equal(1, runsPerIndex[index]));
        Assert.Equal(Enumerable.Range(0, 10), runsPerIndex.Keys.Order());
        Assert.All(orphans, pid => Assert.False(IsAlive(pid), $"orphaned attempt {pid} of the killed runner still runs"));
    }

    private List<int> SucceededIndexes() =>
        Directory.EnumerateFiles(_cli.Store, "ledger.json", SearchOption.AllDirectories)
            .Where(f => File.ReadAllText(f).Contains("\"status\":\"succeeded\"", StringComparison.Ordinal))
            .Select(f => int.Parse(f.Split("index=")[1].Split('/')[0], CultureInfo.InvariantCulture))
            .ToList();

    private static bool IsAlive(int pid)
    {
        var stat = $"/proc/{pid}/stat";
        if (!File.Exists(stat))
        {
            return false;
        }

        var text = File.ReadAllText(stat);
        return text[(text.LastIndexOf(')') + 2)] != 'Z';
    }
}
