using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace BatchRunner.Benchmarks;

/// <summary>
/// Dispatch overhead: N no-op indexes (/bin/true) at parallelism 2 through `batchrunner run` with its default settings
/// (the real CLI, whole process, a fresh store each time, the finished run compacted to Parquet) against
/// `seq | xargs -P2 -n1 /bin/true` on the same machine in the same run.
/// A is the CLI as ./batchrunner runs it (Native AOT); J, the JIT build of the same sources, is measured beside it
/// to show what the native build is worth. One warm-up of each, then A J B A J B … so all see the same load.
/// </summary>
internal static class DispatchBenchmark
{
    private const string JobName = "bench-noop";
    private const double TargetRatio = 1.1;

    private sealed record Measurement(double WallSeconds, double CpuSeconds, long PeakKib, string? Invalid);

    /// <param name="work">
    /// A folder for the spec and the stores, deleted by the caller once nothing else is measured: deleting thousands of
    /// files just before a run slows that run's own file creation down (ext4 without a journal, as on this machine,
    /// skips inodes deleted in the last seconds, at a cost per allocation), so no store is deleted between runs.
    /// </param>
    public static async Task<int> RunAsync(BenchOptions options, string work)
    {
        foreach (var cli in new[] { options.Cli, options.JitDll })
        {
            if (!File.Exists(cli))
            {
                await Console.Error.WriteLineAsync($"dispatch: {cli} is missing; build it (tests/bench/run.sh does)");
                return 1;
            }
        }

        var spec = Path.Combine(work, "spec.yaml");
        await File.WriteAllTextAsync(spec, $"""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata:
              name: {JobName}
            spec:
              command: ["/bin/true"]
              completions: {options.Count}
              parallelism: 2
            """);
        var cliAtStart = File.GetLastWriteTimeUtc(options.Cli);

        Console.WriteLine(Invariant($"dispatch: {options.Count} no-op indexes, parallelism 2 ({options.Pairs} pairs after warm-up)"));
        Console.WriteLine($"  A = {Launch(options, options.Cli)} run SPEC --store TMP   (default settings, fresh store each time)");
        Console.WriteLine($"  J = {Launch(options, options.JitDll)} run SPEC --store TMP   (the JIT build, for reference)");
        Console.WriteLine(Invariant($"  B = bash -c 'seq 0 {options.Count - 1} | xargs -P2 -n1 /bin/true'"));
        Console.WriteLine(Invariant($"  machine: {Environment.ProcessorCount} cores, load average {LoadAverage()} at start"));

        // Children's rusage survives exec: a shell that ran `dotnet build` and then exec'd this program passes its peak on.
        var inheritedKib = Native.ChildrenMaxRssKib();
        var warmB = await RunXargsAsync(options);
        var warmA = await RunBatchRunnerAsync(options, options.Cli, spec, work, "warmup");
        var warmJ = await RunBatchRunnerAsync(options, options.JitDll, spec, work, "warmup-jit");
        Console.WriteLine(Invariant($"  warm-up      A {Describe(warmA)}   J {Describe(warmJ)}   B {Describe(warmB)}"));

        var a = new List<Measurement>();
        var b = new List<Measurement>();
        var j = new List<Measurement>();
        Console.WriteLine("  rep     A wall    J wall    B wall    A/B     J/B     A cpu     B cpu    A peak RSS");
        for (var i = 1; i <= options.Pairs; i++)
        {
            var ma = await RunBatchRunnerAsync(options, options.Cli, spec, work, i.ToString(CultureInfo.InvariantCulture));
            var mj = await RunBatchRunnerAsync(options, options.JitDll, spec, work, "jit-" + i.ToString(CultureInfo.InvariantCulture));
            var mb = await RunXargsAsync(options);
            a.Add(ma);
            j.Add(mj);
            b.Add(mb);
            Console.WriteLine(Invariant($"  {i,-5} {ma.WallSeconds,7:F2} s {mj.WallSeconds,7:F2} s {mb.WallSeconds,7:F2} s  {Ratio(ma, mb)}  {Ratio(mj, mb)}  {ma.CpuSeconds,6:F2} s  {mb.CpuSeconds,6:F2} s  {ma.PeakKib / 1024.0,6:F1} MB"));
            foreach (var (label, m) in new[] { ("A", ma), ("J", mj), ("B", mb) })
            {
                if (m.Invalid is not null)
                {
                    Console.WriteLine($"        {label} INVALID: {m.Invalid}");
                }
            }
        }

        var allPeakKib = Native.ChildrenMaxRssKib();
        var pairs = a.Zip(b).Where(p => p.First.Invalid is null && p.Second.Invalid is null).ToList();
        if (pairs.Count == 0)
        {
            Console.WriteLine("  no valid pair: no figures");
            return 1;
        }

        var aWall = pairs.Select(p => p.First.WallSeconds).ToList();
        var bWall = pairs.Select(p => p.Second.WallSeconds).ToList();
        var ratios = pairs.Select(p => p.First.WallSeconds / p.Second.WallSeconds).ToList();
        var aMedian = Median(aWall);
        var bMedian = Median(bWall);
        var ratioMedian = Median(ratios);
        var valid = pairs.Count == options.Pairs ? "" : Invariant($" — only {pairs.Count} of {options.Pairs} pairs valid");
        var jitPairs = j.Zip(b).Where(p => p.First.Invalid is null && p.Second.Invalid is null).ToList();
        Console.WriteLine(Invariant($"  batchrunner run   median {aMedian:F2} s   (min {aWall.Min():F2}, max {aWall.Max():F2})   cpu median {Median(pairs.Select(p => p.First.CpuSeconds).ToList()):F2} s"));
        if (jitPairs.Count > 0)
        {
            var jitRatios = jitPairs.Select(p => p.First.WallSeconds / p.Second.WallSeconds).ToList();
            Console.WriteLine(Invariant($"  JIT build         median {Median(jitPairs.Select(p => p.First.WallSeconds).ToList()):F2} s   ratio J/B median {Median(jitRatios):F2}× (min {jitRatios.Min():F2}, max {jitRatios.Max():F2})   cpu median {Median(jitPairs.Select(p => p.First.CpuSeconds).ToList()):F2} s"));
        }

        Console.WriteLine(Invariant($"  xargs -P2         median {bMedian:F2} s   (min {bWall.Min():F2}, max {bWall.Max():F2})   cpu median {Median(pairs.Select(p => p.Second.CpuSeconds).ToList()):F2} s"));
        Console.WriteLine(Invariant($"  ratio A/B         median {ratioMedian:F2}×    (min {ratios.Min():F2}, max {ratios.Max():F2})   target ≤ {TargetRatio}×   {(ratioMedian <= TargetRatio ? "within" : "above")} target{valid}"));
        // On a machine busy with other work the wall ratio also measures the scheduler's fairness (the runner has
        // several threads, xargs one); the CPU ratio does not, so both are printed.
        var cpuRatios = pairs.Select(p => p.First.CpuSeconds / p.Second.CpuSeconds).ToList();
        Console.WriteLine(Invariant($"  cpu ratio A/B     median {Median(cpuRatios):F2}×    (min {cpuRatios.Min():F2}, max {cpuRatios.Max():F2})   the process trees' user+sys seconds"));
        Console.WriteLine(Invariant($"  per index         A {aMedian / options.Count * 1000:F2} ms   B {bMedian / options.Count * 1000:F2} ms   overhead (A−B)/{options.Count} = {(aMedian - bMedian) / options.Count * 1000:F2} ms (medians)"));
        // ru_maxrss of a child forked from this benchmark also counts the pages it shared with us before its exec, at
        // most this benchmark's own peak (VmHWM): the figure is A's own when it is above that floor (and above what
        // this process inherited).
        var floorKib = Math.Max(Native.SelfStatusKib("VmHWM"), inheritedKib);
        var sampled = pairs.Select(p => (double)p.First.PeakKib).ToList();
        var rusage = allPeakKib > floorKib
            ? Invariant($"{allPeakKib / 1024.0:F1} MB")
            : Invariant($"≤ {allPeakKib / 1024.0:F1} MB (not above the floor of {floorKib / 1024.0:F1} MB: this process's own peak or its inherited rusage)");
        Console.WriteLine(Invariant($"  peak RSS of A     median {Median(sampled) / 1024:F1} MB, max {sampled.Max() / 1024:F1} MB (VmHWM sampled every 50 ms)   largest of all A runs {rusage} (getrusage children ru_maxrss)"));
        var uncompacted = await RunBatchRunnerAsync(options, options.Cli, spec, work, "uncompacted", compact: false);
        Console.WriteLine(Invariant($"  --no-compact      A once {Describe(uncompacted)} (dispatch alone: the finished run's rows left as JSON)"));
        Console.WriteLine(Invariant($"  machine: load average {LoadAverage()} at end"));
        if (File.GetLastWriteTimeUtc(options.Cli) != cliAtStart)
        {
            Console.WriteLine("  WARNING: the CLI was rebuilt while the benchmark ran; A's figures may mix two builds");
        }

        return pairs.Count == options.Pairs && warmA.Invalid is null && warmB.Invalid is null ? 0 : 1;
    }

    private static string Ratio(Measurement m, Measurement xargs) =>
        m.Invalid is null && xargs.Invalid is null ? Invariant($"{m.WallSeconds / xargs.WallSeconds,5:F2}×") : "  —   ";

    private static bool IsDll(string cli) => cli.EndsWith(".dll", StringComparison.Ordinal);

    private static string Launch(BenchOptions options, string cli) => IsDll(cli) ? "dotnet " + Relative(options, cli) : Relative(options, cli);

    private static async Task<Measurement> RunBatchRunnerAsync(BenchOptions options, string cli, string spec, string work, string label, bool compact = true)
    {
        var store = Path.Combine(work, "store-" + label);
        var start = new ProcessStartInfo(IsDll(cli) ? "dotnet" : cli) { WorkingDirectory = options.RepoRoot };
        // As users run it: the finished run is compacted to Parquet (xargs has no counterpart; it is part of the default).
        foreach (var argument in (IsDll(cli) ? new[] { cli } : []).Concat(["run", spec, "--store", store]).Concat(compact ? [] : ["--no-compact"]))
        {
            start.ArgumentList.Add(argument);
        }

        var (wall, cpu, peakKib, exitCode, output) = await TimeAsync(start);
        var rows = CountLedgerRows(store);
        string? invalid = null;
        if (exitCode != 0 || rows != options.Count)
        {
            var tail = string.Join(" | ", output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(3));
            invalid = Invariant($"exit code {exitCode}, {rows} of {options.Count} ledger rows at attempt=1: {tail}");
        }

        return new Measurement(wall, cpu, peakKib, invalid);
    }

    private static async Task<Measurement> RunXargsAsync(BenchOptions options)
    {
        var start = new ProcessStartInfo("bash") { WorkingDirectory = options.RepoRoot };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(Invariant($"seq 0 {options.Count - 1} | xargs -P2 -n1 /bin/true"));
        var (wall, cpu, peakKib, exitCode, output) = await TimeAsync(start);
        return new Measurement(wall, cpu, peakKib, exitCode == 0 ? null : Invariant($"exit code {exitCode}: {output.Trim()}"));
    }

    /// <summary>
    /// Wall seconds from start to exit (output drained), the CPU seconds of the process and its descendants, and the
    /// highest VmHWM of the process seen by sampling /proc/PID/status every 50 ms (a lower bound of its peak RSS).
    /// </summary>
    private static async Task<(double Wall, double Cpu, long PeakKib, int ExitCode, string Output)> TimeAsync(ProcessStartInfo start)
    {
        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        var cpuBefore = Native.ChildrenCpuSeconds();
        var watch = Stopwatch.StartNew();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var exited = process.WaitForExitAsync();
        var statusFile = $"/proc/{process.Id}/status";
        long peakKib = 0;
        while (await Task.WhenAny(exited, Task.Delay(50)) != exited)
        {
            peakKib = Math.Max(peakKib, Native.StatusKib(statusFile, "VmHWM") ?? 0);
        }

        await exited;
        watch.Stop();
        var cpu = Native.ChildrenCpuSeconds() - cpuBefore;
        lock (output)
        {
            return (watch.Elapsed.TotalSeconds, cpu, peakKib, process.ExitCode, output.ToString());
        }
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is not null)
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        }
    }

    /// <summary>Files matching TMP/batchjob=bench-noop/run=*/index=*/attempt=1/ledger.json.</summary>
    private static int CountLedgerRows(string store)
    {
        var job = Path.Combine(store, "batchjob=" + JobName);
        if (!Directory.Exists(job))
        {
            return 0;
        }

        return Directory.EnumerateDirectories(job, "run=*")
            .SelectMany(run => Directory.EnumerateDirectories(run, "index=*"))
            .Count(index => File.Exists(Path.Combine(index, "attempt=1", "ledger.json")));
    }

    private static string Describe(Measurement m) =>
        m.Invalid is null ? Invariant($"{m.WallSeconds:F2} s") : $"INVALID ({m.Invalid})";

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        var middle = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    private static string Relative(BenchOptions options, string path) => Path.GetRelativePath(options.RepoRoot, path);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
