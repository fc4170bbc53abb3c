using System.Diagnostics;
using System.Globalization;

namespace BatchRunner.Local.Execution;

/// <summary>What the process of one attempt did. <paramref name="Signal"/> is set when a signal ended it (ExitCode is then 128 + it).</summary>
/// <param name="Stragglers">Processes of the attempt still running when it ended, killed then (see <see cref="ProcessContainment"/>).</param>
public sealed record ProcessResult(int? ExitCode, bool StartFailed, bool TimedOut, bool Interrupted, string? StartError, string StderrTail, int? Signal = null, int Stragglers = 0);

/// <summary>One attempt's process: its environment (the spec's and the contract's variables, over the runner's own), where its logs go, its timeout.</summary>
/// <param name="Started">Called once the process exists, with its pid, before waiting on it.</param>
/// <param name="Isolation">When set, what keeps the attempt apart from others (launchers that cannot use it ignore it).</param>
/// <param name="Cgroup">The attempt's own cgroup, from <paramref name="Isolation"/>.</param>
public sealed record AttemptLaunch(
    IReadOnlyList<KeyValuePair<string, string>> Environment,
    string LogsFolder,
    TimeSpan? Timeout,
    Action<int> Started,
    AttemptIsolation? Isolation = null,
    string? Cgroup = null);

/// <summary>
/// Starts the processes of a run's attempts: arguments passed without a shell, the given variables added to the
/// runner's own environment, standard input empty, standard output and error in log files under the attempt's
/// logs folder (kept only when not empty), and the whole process tree killed on timeout or cancellation.
/// </summary>
public interface IProcessLauncher
{
    /// <summary>Prepares once what every attempt of a run shares.</summary>
    ICommandLauncher Prepare(IReadOnlyList<string> argv, string workingDirectory, TimeProvider time);
}

/// <summary>Runs the attempts of one command.</summary>
public interface ICommandLauncher : IDisposable
{
    Task<ProcessResult> RunAsync(AttemptLaunch attempt, CancellationToken cancellation);
}

/// <summary>The launcher to use, and what every launcher shares.</summary>
public static class ProcessLauncher
{
    public const string StdoutFile = "stdout.txt";
    public const string StderrFile = "stderr.txt";
    internal const int StderrTailBytes = 2048;

    /// <summary>posix_spawn where it works (Linux), .NET's Process elsewhere.</summary>
    public static IProcessLauncher Default => PosixSpawnLauncher.IsSupported ? PosixSpawnLauncher.Instance : DotNetProcessLauncher.Instance;

    /// <summary>Kills a process and every descendant it still has.</summary>
    public static void KillTree(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited between the decision and the kill: nothing left to do.
        }
    }
}
