using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary><c>batchrunner logs</c> through <c>./batchrunner</c> on the local store: attempts, standard error, follow, refusals.</summary>
public sealed class LogsCommandTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    /// <summary>Each index says hello on standard output and error; index 1 fails its first attempt; index 2 says nothing.</summary>
    private string ChattySpec() => _cli.WriteSpec("chatty.yaml", """
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: chatty}
        spec:
          command: ["/bin/sh", "-c", "[ $BATCHRUNNER_INDEX = 2 ] && exit 0; if [ $BATCHRUNNER_INDEX = 1 ] && [ ! -e $SCRATCH/tried ]; then touch $SCRATCH/tried; echo 'out 1 first'; echo 'err 1 first' >&2; exit 4; fi; echo \"out $BATCHRUNNER_INDEX\"; echo \"err $BATCHRUNNER_INDEX\" >&2"]
          completions: 3
          retry: {attempts: 2, backoffSeconds: 0}
        """);

    [Fact]
    public async Task Logs_print_the_latest_attempt_or_the_one_named_and_standard_error_apart()
    {
        Assert.Equal(0, (await _cli.RunAsync("run", ChattySpec())).ExitCode);

        var latest = await _cli.RunAsync("logs", "chatty", "--index", "1");
        var first = await _cli.RunAsync("logs", "chatty", "--index", "1", "--attempt", "1", "--stderr");

        Assert.True(latest.ExitCode == 0, latest.ToString());
        Assert.Equal("out 1\n", latest.Stdout);
        Assert.Equal(("err 1 first\n", 0), (first.Stdout, first.ExitCode));
    }

    [Fact]
    public async Task An_index_that_wrote_nothing_never_ran_or_lies_outside_the_run_is_said_so()
    {
        Assert.Equal(0, (await _cli.RunAsync("run", ChattySpec())).ExitCode);

        var quiet = await _cli.RunAsync("logs", "chatty", "--index", "2");
        var outside = await _cli.RunAsync("logs", "chatty", "--index", "3");
        var noAttempt = await _cli.RunAsync("logs", "chatty", "--index", "0", "--attempt", "5");
        var unknown = await _cli.RunAsync("logs", "nobody", "--index", "0");

        Assert.Equal(0, quiet.ExitCode);
        Assert.Matches(@"^logs: chatty run r\w+ index 2 attempt 1 wrote nothing to standard output \(an empty log is not kept\)\n$", quiet.Stderr);
        Assert.Equal(2, outside.ExitCode);
        Assert.Contains("--index: index 3 is outside the run: it has 3 indexes (0 to 2)", outside.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, noAttempt.ExitCode);
        Assert.Contains("index 0 has no attempt 5 (attempts: 1)", noAttempt.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no run of nobody in namespace default", unknown.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Following_a_running_attempt_prints_its_lines_as_they_come_and_stops_when_it_ends()
    {
        var spec = _cli.WriteSpec("slow.yaml", """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: slow}
            spec:
              command: ["/bin/sh", "-c", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.3; done"]
            """);
        using var run = _cli.Start("run", spec);
        var log = Path.Combine(_cli.Store, "batchjob=slow");
        await Cli.WaitForAsync(() => Directory.Exists(log) && Directory.EnumerateFiles(log, "stdout.txt", SearchOption.AllDirectories).Any(), "the run did not start its index");

        var followed = await _cli.RunAsync("logs", "slow", "--index", "0", "--follow");
        await run.WaitForExitAsync();

        Assert.True(followed.ExitCode == 0, followed.ToString());
        Assert.Equal("tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n", followed.Stdout);
        Assert.Equal(0, run.ExitCode);
    }
}
