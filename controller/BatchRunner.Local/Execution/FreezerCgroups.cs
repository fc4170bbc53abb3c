using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using BatchRunner.Store.Native;

namespace BatchRunner.Local.Execution;

/// <summary>
/// A cgroup per attempt in the cgroup v1 freezer hierarchy, under <c>batchrunner/STORE-RUN/INDEX-ATTEMPT</c>: every
/// process the attempt starts is in it, however it detaches (setsid, a double fork, an emptied environment), and
/// cannot leave it without writing to the cgroup filesystem. Ending an attempt freezes its cgroup, kills every
/// member and thaws it, so nothing can fork while it is being killed. The folders are named by the store and run, so
/// the next runner of a run (after a kill -9) and <c>batchrunner cancel</c> find what a dead runner left.
/// A process joins a v1 cgroup one thread at a time: the spawn thread (see <see cref="AttemptIsolation"/>) enters the
/// attempt's cgroup, spawns (the child inherits it) and goes back. cgroup v2 moves whole processes only, which
/// would need clone3's CLONE_INTO_CGROUP that posix_spawn does not offer; there, and without root, the child
/// subreaper of <see cref="ProcessContainment"/> contains attempts on its own.
/// </summary>
internal static class FreezerCgroups
{
    private const string Hierarchy = "/sys/fs/cgroup/freezer";
    private const string Base = Hierarchy + "/batchrunner";

    /// <summary>Null when attempts of this process can get freezer cgroups; else why not.</summary>
    public static string? Unavailable { get; } = Probe();

    /// <summary>The run's folder of cgroups: the store's hash beside the run id (run ids repeat across stores).</summary>
    public static string RunFolder(string storeRoot, string runId)
    {
        var store = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(storeRoot))))[..16];
        return Path.Combine(Base, $"{store}-{runId}");
    }

    /// <summary>Makes the attempt's cgroup (empty: a leftover of the same name is emptied first).</summary>
    public static string Create(string runFolder, int index, int attempt)
    {
        var path = Path.Combine(runFolder, string.Create(CultureInfo.InvariantCulture, $"{index}-{attempt}"));
        if (Directory.Exists(path))
        {
            KillAll(path);
        }

        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>On the spawn thread: the calling thread joins <paramref name="cgroup"/>, so what it spawns is in it.</summary>
    public static void Enter(string cgroup) => WriteTid(Path.Combine(cgroup, "tasks"));

    /// <summary>On the spawn thread: back to the cgroup the thread came from.</summary>
    public static void Leave(string original) => WriteTid(Path.Combine(original, "tasks"));

    /// <summary>The calling thread's own freezer cgroup folder.</summary>
    public static string Current()
    {
        foreach (var line in File.ReadAllLines("/proc/thread-self/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length == 3 && parts[1].Split(',').Contains("freezer"))
            {
                return Hierarchy + parts[2].TrimEnd('/');
            }
        }

        throw new IOException("this thread is in no freezer cgroup");
    }

    /// <summary>
    /// Freezes the cgroup, kills every process in it but <paramref name="except"/> (an attempt's leader, killed and
    /// reaped by its own launcher), thaws it; how many there were. 0 when it is gone.
    /// </summary>
    public static int KillAll(string cgroup, int except = 0)
    {
        var state = Path.Combine(cgroup, "freezer.state");
        var killed = new HashSet<int>();
        try
        {
            // Frozen, nothing in it can fork while its members are read and killed; SIGKILL acts once thawed.
            for (var round = 0; round < 100; round++)
            {
                if (Members(cgroup, except).Count == 0)
                {
                    break;
                }

                File.WriteAllText(state, "FROZEN");
                WaitFor(() => File.ReadAllText(state).Trim() == "FROZEN", TimeSpan.FromSeconds(1));
                foreach (var pid in Members(cgroup, except))
                {
                    LibC.Kill(pid, LibC.SIGKILL);
                    killed.Add(pid);
                }

                File.WriteAllText(state, "THAWED");
                WaitFor(() => Members(cgroup, except).Count == 0, TimeSpan.FromSeconds(1));
            }
        }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException)
        {
            // Removed meanwhile: nothing in it.
        }

        return killed.Count;
    }

    /// <summary>Removes an emptied cgroup; one that still has members stays (the run's end or next runner tries again).</summary>
    public static unsafe void Remove(string cgroup)
    {
        var path = LibC.Utf8(cgroup);
        try
        {
            _ = LibC.RmDir(path);
        }
        finally
        {
            NativeMemory.Free(path);
        }
    }

    /// <summary>Kills what every attempt cgroup of a run holds and removes them; how many processes there were.</summary>
    public static int KillRun(string runFolder)
    {
        if (Unavailable is not null || !Directory.Exists(runFolder))
        {
            return 0;
        }

        var killed = 0;
        foreach (var cgroup in Directory.EnumerateDirectories(runFolder))
        {
            killed += KillAll(cgroup);
            Remove(cgroup);
        }

        Remove(runFolder);
        return killed;
    }

    private static List<int> Members(string cgroup, int except = 0)
    {
        var members = new List<int>();
        foreach (var line in File.ReadAllLines(Path.Combine(cgroup, "cgroup.procs")))
        {
            if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid != except)
            {
                members.Add(pid);
            }
        }

        return members;
    }

    private static void WaitFor(Func<bool> condition, TimeSpan limit)
    {
        var until = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        while (!condition() && Environment.TickCount64 < until)
        {
            Thread.Sleep(1);
        }
    }

    private static void WriteTid(string tasks)
    {
        // One write of the number: the kernel moves the thread on write(2).
        using var file = new FileStream(tasks, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None);
        file.Write(Encoding.ASCII.GetBytes(LibC.GetTid().ToString(CultureInfo.InvariantCulture)));
    }

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "cgroups are Linux's";
        }

        if (!File.Exists(Path.Combine(Hierarchy, "tasks")))
        {
            return "no cgroup v1 freezer hierarchy is mounted at " + Hierarchy + " (on cgroup v2 a thread cannot join a cgroup on its own)";
        }

        try
        {
            Directory.CreateDirectory(Base);
            using var probe = new FileStream(Path.Combine(Base, "tasks"), FileMode.Open, FileAccess.Write);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"{Base} is not writable here ({e.Message})";
        }
    }
}
