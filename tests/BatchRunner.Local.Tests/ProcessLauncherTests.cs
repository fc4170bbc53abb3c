using System.Diagnostics;
using System.Globalization;
using BatchRunner.Core.Runs;
using BatchRunner.Local.Execution;
using Xunit;

namespace BatchRunner.Local.Tests;

/// <summary>
/// The launchers on their own: what a process sees (argv, environment, working directory, stdin, signals) and
/// what the runner gets back (exit code, signal, logs, stderr tail). Most facts hold for both launchers; those
/// about process groups and reaping are the posix_spawn launcher's.
/// </summary>
public sealed class ProcessLauncherTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("batchrunner-launcher-").FullName;

    public static TheoryData<string> Launchers => new() { "posix_spawn", "dotnet" };

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A killed process may still be releasing a file.
        }
    }

    [Fact]
    public void The_posix_spawn_launcher_is_the_default_on_linux()
    {
        Assert.True(PosixSpawnLauncher.IsSupported);
        Assert.Same(PosixSpawnLauncher.Instance, ProcessLauncher.Default);
    }

    [Theory]
    [MemberData(nameof(Launchers))]
    public async Task Exit_codes_come_back_as_the_process_gave_them(string launcher)
    {
        foreach (var code in new[] { 0, 1, 7, 137, 255 })
        {
            var (result, _) = await RunAsync(launcher, ["/bin/sh", "-c", $"exit {code}"]);

            Assert.Equal(code, result.ExitCode);
            Assert.False(result.StartFailed || result.TimedOut || result.Interrupted);
            Assert.Null(result.Signal);
        }
    }

    [Fact]
    public async Task A_process_killed_by_a_signal_reports_the_signal_and_the_reason_names_it()
    {
        var (result, _) = await RunAsync("posix_spawn", ["/bin/sh", "-c", "echo about to go >&2; kill -TERM $$"]);

        Assert.Equal(143, result.ExitCode);
        Assert.Equal(15, result.Signal);
        Assert.Equal("exit code 143 (killed by signal 15, SIGTERM): about to go", ExitDescription.Describe(result.ExitCode!.Value, result.StderrTail, result.Signal));
    }

    [Fact]
    public async Task Signals_are_at_their_defaults_in_the_child_although_the_runtime_ignores_sigpipe()
    {
        // With SIGPIPE ignored, `yes` would see EPIPE and complain on stderr; at its default it dies quietly.
        var (result, logs) = await RunAsync("posix_spawn", ["/bin/sh", "-c", "yes | head -n 1 > /dev/null; echo done"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("done\n", File.ReadAllText(Path.Combine(logs, ProcessLauncher.StdoutFile)));
        Assert.False(File.Exists(Path.Combine(logs, ProcessLauncher.StderrFile)));
    }

    [Theory]
    [MemberData(nameof(Launchers))]
    public async Task Arguments_reach_the_program_literally_without_a_shell(string launcher)
    {
        var (result, logs) = await RunAsync(launcher, ["printf", "%s\\n", "two words", "$HOME;echo injected", "*", "", "ünï"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(["two words", "$HOME;echo injected", "*", "", "ünï"], File.ReadAllLines(Path.Combine(logs, ProcessLauncher.StdoutFile)));
    }

    [Theory]
    [MemberData(nameof(Launchers))]
    public async Task The_environment_is_the_runners_own_with_the_attempts_variables_over_it(string launcher)
    {
        Environment.SetEnvironmentVariable("BR_LAUNCHER_TEST_INHERITED", "from the runner");
        Environment.SetEnvironmentVariable("BR_LAUNCHER_TEST_OVERRIDDEN", "from the runner");
        try
        {
            var (result, logs) = await RunAsync(launcher, ["env"], environment:
            [
                new("BR_LAUNCHER_TEST_OVERRIDDEN", "from the attempt"),
                new("BR_LAUNCHER_TEST_TWICE", "first"),
                new("BR_LAUNCHER_TEST_TWICE", "second"),
                new("BR_LAUNCHER_TEST_SPACES", "a b = c"),
            ]);

            Assert.Equal(0, result.ExitCode);
            var lines = File.ReadAllLines(Path.Combine(logs, ProcessLauncher.StdoutFile));
            Assert.Contains("BR_LAUNCHER_TEST_INHERITED=from the runner", lines);
            Assert.Equal(["BR_LAUNCHER_TEST_OVERRIDDEN=from the attempt"], lines.Where(l => l.StartsWith("BR_LAUNCHER_TEST_OVERRIDDEN=", StringComparison.Ordinal)));
            Assert.Equal(["BR_LAUNCHER_TEST_TWICE=second"], lines.Where(l => l.StartsWith("BR_LAUNCHER_TEST_TWICE=", StringComparison.Ordinal)));
            Assert.Contains("BR_LAUNCHER_TEST_SPACES=a b = c", lines);
        }
        finally
        {
            Environment.SetEnvironmentVariable("BR_LAUNCHER_TEST_INHERITED", null);
            Environment.SetEnvironmentVariable("BR_LAUNCHER_TEST_OVERRIDDEN", null);
        }
    }

    [Theory]
    [MemberData(nameof(Launchers))]
    public async Task It_runs_in_the_working_directory_with_an_empty_standard_input(string launcher)
    {
        var work = Directory.CreateDirectory(Path.Combine(_root, "work dir")).FullName;
        File.WriteAllText(Path.Combine(work, "script.sh"), "#!/bin/sh\npwd\ncat\necho read-all\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(work, "script.sh"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        }

        // A relative program path resolves against the working directory; cat sees end-of-file at once.
        var (result, logs) = await RunAsync(launcher, ["./script.sh"], workingDirectory: work);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal([work, "read-all"], File.ReadAllLines(Path.Combine(logs, ProcessLauncher.StdoutFile)));
    }

    [Theory]
    [MemberData(nameof(Launchers))]
    public async Task Logs_are_files_only_when_the_process_wrote_to_them_and_the_stderr_tail_is_returned(string launcher)
    {
        var (silent, silentLogs) = await RunAsync(launcher, ["true"]);
        var (errorOnly, errorLogs) = await RunAsync(launcher, ["/bin/sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x >&2; echo; echo last line >&2; exit 3"]);
        var (large, largeLogs) = await RunAsync(launcher, ["/bin/sh", "-c", "head -c 3000000 /dev/zero"]);

        Assert.Equal(0, silent.ExitCode);
        Assert.False(Directory.Exists(silentLogs), "a process that wrote nothing left a logs folder");
        Assert.Equal("", silent.StderrTail);

        Assert.Equal(3, errorOnly.ExitCode);
        Assert.Equal("\n", File.ReadAllText(Path.Combine(errorLogs, ProcessLauncher.StdoutFile)));
        Assert.Equal(5000 + "last line\n".Length, new FileInfo(Path.Combine(errorLogs, ProcessLauncher.StderrFile)).Length);
        Assert.Equal(ProcessLauncher.StderrTailBytes, errorOnly.StderrTail.Length);
        Assert.EndsWith("xxxlast line\n", errorOnly.StderrTail, StringComparison.Ordinal);

        Assert.Equal(0, large.ExitCode);
        Assert.Equal(3_000_000, new FileInfo(Path.Combine(largeLogs, ProcessLauncher.StdoutFile)).Length);
        Assert.False(File.Exists(Path.Combine(largeLogs, ProcessLauncher.StderrFile)));
    }

    [Theory]
    [MemberData(nameof(Launchers))]
    public async Task A_program_that_cannot_start_is_reported_and_leaves_no_logs(string launcher)
    {
        var notExecutable = Path.Combine(_root, "data.txt");
        File.WriteAllText(notExecutable, "not a program");

        var (result, logs) = await RunAsync(launcher, [notExecutable]);

        Assert.True(result.StartFailed);
        Assert.StartsWith($"cannot start \"{notExecutable}\"", result.StartError, StringComparison.Ordinal);
        Assert.Contains("ermission denied", result.StartError, StringComparison.Ordinal);
        Assert.False(Directory.Exists(logs));
    }

    [Fact]
    public async Task A_timeout_kills_the_process_group_even_descendants_whose_parent_has_exited()
    {
        // The subshell exits at once, so its sleep is reparented: no parent link leads to it, only its process group.
        var marker = Path.Combine(_root, "orphan.pid");
        var started = Stopwatch.StartNew();

        var (result, _) = await RunAsync("posix_spawn", ["/bin/sh", "-c", $"(sleep 60 & echo $! > '{marker}'); sleep 60"], timeout: TimeSpan.FromSeconds(0.5));

        Assert.True(started.Elapsed < TimeSpan.FromSeconds(20));
        Assert.True(result.TimedOut);
        Assert.False(result.Interrupted);
        Assert.Equal(9, result.Signal);
        var orphan = int.Parse(File.ReadAllText(marker).Trim(), CultureInfo.InvariantCulture);
        Assert.True(await Pids.WaitUntilGoneAsync(orphan, TimeSpan.FromSeconds(5)), $"the reparented descendant {orphan} survived the timeout");
    }

    [Theory]
    [MemberData(nameof(Launchers))]
    public async Task Cancelling_kills_the_tree_and_reports_an_interruption(string launcher)
    {
        var marker = Path.Combine(_root, "child.pid");
        using var cancel = new CancellationTokenSource();
        var running = RunAsync(launcher, ["/bin/sh", "-c", $"sleep 60 & echo $! > '{marker}'; wait"], cancellation: cancel.Token);
        await ExecutorSemanticsTests.WaitForAsync(() => File.Exists(marker) && File.ReadAllText(marker).EndsWith('\n'));

        await cancel.CancelAsync();
        var (result, _) = await running.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(result.Interrupted);
        Assert.False(result.TimedOut);
        var child = int.Parse(File.ReadAllText(marker).Trim(), CultureInfo.InvariantCulture);
        Assert.True(await Pids.WaitUntilGoneAsync(child, TimeSpan.FromSeconds(5)), $"the child {child} survived the cancel");
    }

    [Fact]
    public async Task Each_attempt_leads_a_process_group_of_its_own()
    {
        var (result, logs) = await RunAsync("posix_spawn", ["/bin/sh", "-c", "echo $$; cut -d ' ' -f 5 /proc/$$/stat"]);

        Assert.Equal(0, result.ExitCode);
        var lines = File.ReadAllLines(Path.Combine(logs, ProcessLauncher.StdoutFile)).Select(l => l.Trim()).ToArray();
        Assert.Equal(lines[0], lines[1]);
    }

    [Fact]
    public async Task Neither_reaper_steals_the_others_children_when_both_launch_at_once()
    {
        // .NET reaps its Process children by pid on SIGCHLD; the posix_spawn reaper reaps its own by pid. Interleaved,
        // each must still see its own exit codes (a stolen status would read as an error or a wrong code).
        using var launcher = PosixSpawnLauncher.Instance.Prepare(["/bin/sh", "-c", "exit $CODE"], _root, TimeProvider.System);
        var spawned = Enumerable.Range(0, 40).Select(async i =>
        {
            var logs = Path.Combine(Directory.CreateDirectory(Path.Combine(_root, $"a{i}")).FullName, "logs");
            var result = await launcher.RunAsync(new AttemptLaunch([new("CODE", (i % 50).ToString(CultureInfo.InvariantCulture))], logs, null, _ => { }), CancellationToken.None);
            return (Expected: i % 50, result.ExitCode, result.StderrTail);
        }).ToList();
        var processes = Enumerable.Range(0, 40).Select(async i =>
        {
            using var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", $"exit {100 + i}"]))!;
            await process.WaitForExitAsync();
            return (Expected: 100 + i, process.ExitCode);
        }).ToList();

        foreach (var (expected, exitCode, tail) in await Task.WhenAll(spawned))
        {
            Assert.True(expected == exitCode, $"posix_spawn child: expected {expected}, got {exitCode?.ToString(CultureInfo.InvariantCulture) ?? "none"} {tail}");
        }

        foreach (var (expected, exitCode) in await Task.WhenAll(processes))
        {
            Assert.Equal(expected, exitCode);
        }
    }

    private async Task<(ProcessResult Result, string LogsFolder)> RunAsync(
        string launcher,
        IReadOnlyList<string> argv,
        IReadOnlyList<KeyValuePair<string, string>>? environment = null,
        string? workingDirectory = null,
        TimeSpan? timeout = null,
        CancellationToken cancellation = default)
    {
        IProcessLauncher chosen = launcher == "posix_spawn" ? PosixSpawnLauncher.Instance : DotNetProcessLauncher.Instance;
        var attemptFolder = Directory.CreateDirectory(Path.Combine(_root, "attempt-" + Guid.NewGuid().ToString("N"))).FullName;
        var logs = Path.Combine(attemptFolder, "logs");
        using var command = chosen.Prepare(argv, workingDirectory ?? _root, TimeProvider.System);
        var pid = 0;
        var result = await command.RunAsync(new AttemptLaunch(environment ?? [], logs, timeout, p => pid = p), cancellation);
        Assert.True(result.StartFailed || pid > 0, "the started callback was not called with the pid");
        return (result, logs);
    }
}
