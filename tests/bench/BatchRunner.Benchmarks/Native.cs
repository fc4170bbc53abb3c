using System.Runtime.InteropServices;

namespace BatchRunner.Benchmarks;

/// <summary>Resource usage of this process's reaped children (getrusage(2), RUSAGE_CHILDREN), and /proc/self/status.</summary>
internal static class Native
{
    private const int RusageChildren = -1;

    /// <summary>CPU seconds (user + system) of every child reaped so far, including their own reaped children.</summary>
    public static double ChildrenCpuSeconds()
    {
        var usage = ChildrenUsage();
        return usage.UtimeSec + usage.UtimeUsec / 1e6 + usage.StimeSec + usage.StimeUsec / 1e6;
    }

    /// <summary>Largest peak RSS, in KiB, of any descendant reaped so far (Linux: ru_maxrss of RUSAGE_CHILDREN).</summary>
    public static long ChildrenMaxRssKib() => ChildrenUsage().MaxRss;

    /// <summary>A "Name: N kB" line of /proc/self/status (VmHWM, VmRSS), in KiB.</summary>
    public static long SelfStatusKib(string field) =>
        StatusKib("/proc/self/status", field) ?? throw new InvalidOperationException($"/proc/self/status has no {field}");

    /// <summary>A "Name: N kB" line of a /proc/PID/status file, in KiB; null when the process is gone.</summary>
    public static long? StatusKib(string statusFile, string field)
    {
        try
        {
            foreach (var line in File.ReadLines(statusFile))
            {
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(field.Length + 1).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // It exited between two samples.
        }

        return null;
    }

    private static RUsage ChildrenUsage() =>
        GetRUsage(RusageChildren, out var usage) == 0
            ? usage
            : throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");

    // struct rusage on LP64 Linux: two struct timeval, then fourteen longs.
    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UtimeSec, UtimeUsec, StimeSec, StimeUsec;
        public long MaxRss, Ixrss, Idrss, Isrss, Minflt, Majflt, Nswap, Inblock, Oublock, Msgsnd, Msgrcv, Nsignals, Nvcsw, Nivcsw;
    }

    [DllImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static extern int GetRUsage(int who, out RUsage usage);
}
