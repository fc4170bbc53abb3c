using System.Diagnostics;
using System.Globalization;

namespace BatchRunner.Local.Execution;

/// <summary>
/// Tells whether a recorded pid is still the process that was recorded, by its start time in
/// <c>/proc/PID/stat</c>, so that a resumed run kills its orphaned attempts and never a stranger that reused the pid.
/// </summary>
public static class ProcessIdentity
{
    public static long? StartTicks(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) may hold spaces and parentheses; fields after the last ')' are plain.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[19], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Kills the process tree of a recorded attempt if that same process still runs; true when it did.</summary>
    public static bool KillIfStillRunning(int pid, long? recordedStartTicks)
    {
        if (recordedStartTicks is null || StartTicks(pid) != recordedStartTicks)
        {
            return false;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            // An attempt started by posix_spawn leads its own process group: its descendants that were reparented
            // (their parent died with the runner or before it) are found through the group.
            var leadsGroup = OperatingSystem.IsLinux() && LibC.GetPGid(pid) == pid;
            ProcessLauncher.KillTree(process);
            if (leadsGroup)
            {
                LibC.Kill(-pid, LibC.SIGKILL);
            }

            process.WaitForExit(TimeSpan.FromSeconds(10));
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
