using System.Diagnostics;
using System.Globalization;
using System.Text;
using BatchRunner.Core.Runs;
using BatchRunner.Store.Native;

namespace BatchRunner.Local.Execution;

/// <summary>
/// Tells whether a recorded pid is still the process that was recorded, by its start time in
/// <c>/proc/PID/stat</c>, so that a resumed run kills its orphaned attempts and never a stranger that reused the pid.
/// </summary>
public static class ProcessIdentity
{
    /// <summary>Field 22 of /proc/PID/stat (the start time in clock ticks since boot); null when the process is gone.</summary>
    public static unsafe long? StartTicks(int pid)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        // Read with three system calls into the stack: this runs once per attempt.
        var path = stackalloc byte[32];
        var length = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/stat"), new Span<byte>(path, 31));
        path[length] = 0;
        var fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        if (fd < 0)
        {
            return null;
        }

        var buffer = stackalloc byte[1024];
        nint read;
        try
        {
            read = LibC.Read(fd, buffer, 1024);
        }
        finally
        {
            LibC.Close(fd);
        }

        if (read <= 0)
        {
            return null;
        }

        // The command name (field 2) may hold spaces and parentheses; fields after the last ')' are plain.
        var stat = new ReadOnlySpan<byte>(buffer, (int)read);
        var close = stat.LastIndexOf((byte)')');
        if (close < 0 || close + 2 >= stat.Length)
        {
            return null;
        }

        var rest = stat[(close + 2)..];
        for (var field = 0; field < 19; field++)
        {
            var space = rest.IndexOf((byte)' ');
            if (space < 0)
            {
                return null;
            }

            rest = rest[(space + 1)..];
        }

        var end = rest.IndexOf((byte)' ');
        return long.TryParse(end < 0 ? rest : rest[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
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

    /// <summary>
    /// Kills every process whose environment says it works for an attempt of the run in <paramref name="runFolder"/>
    /// (its BATCHRUNNER_OUTPUT_DIR lies under it), with the process group it belongs to when that group is not ours.
    /// Finds the attempts of a runner that died before its state recorded them; the path makes it this store's run.
    /// </summary>
    public static IReadOnlyList<(int Pid, string OutputDir)> KillProcessesWorkingUnder(string runFolder)
    {
        var killed = new List<(int, string)>();
        if (!OperatingSystem.IsLinux() || !Directory.Exists("/proc"))
        {
            return killed;
        }

        var marker = Encoding.UTF8.GetBytes($"{WorkloadEnvironment.OutputDir}={runFolder.TrimEnd('/')}/index=");
        var self = Environment.ProcessId;
        var ownGroup = LibC.GetPGid(0);
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == self)
            {
                continue;
            }

            byte[] environment;
            try
            {
                environment = File.ReadAllBytes(Path.Combine(folder, "environ"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // gone, or another user's
            }

            if (FindEntry(environment, marker) is not { } outputDir)
            {
                continue;
            }

            var group = LibC.GetPGid(pid);
            if (group > 1 && group != ownGroup)
            {
                LibC.Kill(-group, LibC.SIGKILL);
            }

            LibC.Kill(pid, LibC.SIGKILL);
            killed.Add((pid, outputDir));
        }

        return killed;
    }

    /// <summary>The value of the NUL-separated entry that starts with <paramref name="prefix"/> (the variable's name and '=').</summary>
    internal static string? FindEntry(byte[] environment, byte[] prefix)
    {
        var span = environment.AsSpan();
        var nameLength = Array.IndexOf(prefix, (byte)'=') + 1;
        while (span.Length > 0)
        {
            var end = span.IndexOf((byte)0);
            var entry = end < 0 ? span : span[..end];
            if (entry.StartsWith(prefix))
            {
                return Encoding.UTF8.GetString(entry[nameLength..]);
            }

            span = end < 0 ? [] : span[(end + 1)..];
        }

        return null;
    }
}
