using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using BatchRunner.Core.Runs;
using BatchRunner.Store.Native;

namespace BatchRunner.Local.Execution;

/// <summary>
/// Keeps every process an attempt starts inside the attempt, however it detaches. This process becomes a child
/// subreaper (prctl PR_SET_CHILD_SUBREAPER): a descendant whose parent exits, daemonized or in a session of its own
/// (setsid), is re-parented here instead of to init, so it can still be found: by the attempt's output folder in its
/// environment. When an attempt ends, its process group and every such process of it are killed and reaped; when a
/// run ends, whatever of it is left. (A process that empties its environment and detaches can only be told apart as
/// not belonging to a running attempt; it is killed when no run is left in this process.) Where the runner may make
/// cgroups, <see cref="FreezerCgroups"/> finds those too; this needs no privilege, so it is always on.
/// Only a host that owns every child process it has may enable it (the CLI and the controller): it reaps zombie
/// children it did not start itself, which would take the exit status from whoever did.
/// </summary>
public static class ProcessContainment
{
    private static readonly Lock Gate = new();
    private static readonly HashSet<int> Leaders = [];
    private static int _activeRuns;

    /// <summary>True once this process is a child subreaper.</summary>
    public static bool Enabled { get; private set; }

    /// <summary>Makes this process the subreaper of everything its attempts start (Linux); false where that is not possible.</summary>
    public static bool Enable()
    {
        lock (Gate)
        {
            if (!Enabled && OperatingSystem.IsLinux())
            {
                Enabled = LibC.Prctl(LibC.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
            }

            return Enabled;
        }
    }

    /// <summary>Spawns under the gate, so a sweep never takes a leader that has just started for a straggler.</summary>
    internal static T Spawning<T>(Func<T> spawn, Func<T, int> pidOf)
    {
        lock (Gate)
        {
            var result = spawn();
            if (pidOf(result) > 0)
            {
                Leaders.Add(pidOf(result));
            }

            return result;
        }
    }

    internal static void Reaped(int pid)
    {
        lock (Gate)
        {
            Leaders.Remove(pid);
        }
    }

    internal static void RunStarted() => Interlocked.Increment(ref _activeRuns);

    /// <summary>Kills what a run left behind; when it was the last run of this process, every stray child too.</summary>
    internal static int RunEnded(string runFolder)
    {
        var last = Interlocked.Decrement(ref _activeRuns) == 0;
        var prefix = runFolder.TrimEnd('/') + "/";
        return Sweep((_, dir) => dir is not null ? dir.StartsWith(prefix, StringComparison.Ordinal) : last);
    }

    /// <summary>
    /// Kills the processes an attempt left running, called once its leader has exited and before it is reaped (its
    /// zombie keeps the process group's id from being reused): every re-parented process whose environment names the
    /// attempt's output folder (when enabled), then the attempt's process group. Returns how many processes were found
    /// outside the group's leader (0 when containment is off: the group is killed, uncounted).
    /// </summary>
    internal static int AttemptEnded(int leader, string? outputDir)
    {
        // Its own by the output folder in the environment, or by its process group (a child that emptied its environment).
        var found = Sweep((pid, dir) => (outputDir is not null && dir == outputDir) || LibC.GetPGid(pid) == leader);
        LibC.Kill(-leader, LibC.SIGKILL);
        return found;
    }

    /// <summary>Kills and reaps the children that are not running attempts and that <paramref name="belongs"/> (given their output folder); reaps zombies.</summary>
    private static int Sweep(Func<int, string?, bool> belongs)
    {
        if (!Enabled)
        {
            return 0;
        }

        var killed = 0;
        // A killed process's own children come to this process in turn: a few rounds take a whole tree.
        for (var round = 0; round < 32; round++)
        {
            var again = false;
            foreach (var pid in Children())
            {
                lock (Gate)
                {
                    if (Leaders.Contains(pid))
                    {
                        continue;
                    }
                }

                if (IsZombie(pid))
                {
                    Reap(pid, block: false);
                    continue;
                }

                if (!belongs(pid, OutputDirOf(pid)))
                {
                    continue;
                }

                if (LibC.GetPGid(pid) == pid)
                {
                    LibC.Kill(-pid, LibC.SIGKILL);
                }

                LibC.Kill(pid, LibC.SIGKILL);
                Reap(pid, block: true);
                killed++;
                again = true;
            }

            if (!again)
            {
                break;
            }
        }

        return killed;
    }

    /// <summary>This process's children, from every thread's children list (Linux 3.5+, CONFIG_PROC_CHILDREN).</summary>
    private static List<int> Children()
    {
        var children = new List<int>();
        try
        {
            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                string text;
                try
                {
                    text = File.ReadAllText(Path.Combine(task, "children"));
                }
                catch (IOException)
                {
                    continue; // the thread ended
                }

                foreach (var item in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                    {
                        children.Add(pid);
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No /proc: nothing can be found.
        }

        return children;
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] == 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string? OutputDirOf(int pid)
    {
        byte[] environment;
        try
        {
            environment = File.ReadAllBytes($"/proc/{pid}/environ");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return ProcessIdentity.FindEntry(environment, OutputDirPrefix);
    }

    private static readonly byte[] OutputDirPrefix = Encoding.UTF8.GetBytes(WorkloadEnvironment.OutputDir + "=");

    private static unsafe void Reap(int pid, bool block)
    {
        int status;
        int result;
        do
        {
            result = LibC.WaitPid(pid, &status, block ? 0 : LibC.WNOHANG);
        }
        while (result < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR);
    }
}
