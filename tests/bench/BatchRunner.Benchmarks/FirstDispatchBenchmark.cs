using System.Diagnostics;
using System.Globalization;

namespace BatchRunner.Benchmarks;

/// <summary>
/// Time to first dispatch of a one-million-index sweep through <c>batchrunner run</c>: from starting the CLI to the
/// first index's command running (it touches a marker file), beside <c>seq | xargs -P2</c> reaching its first command
/// over the same count in the same run; the CLI's peak RSS at that moment says the plan is not held index by index.
/// Each run is then interrupted (the CLI stops its attempts on SIGINT).
/// </summary>
internal static class FirstDispatchBenchmark
{
    private const double TargetSeconds = 1.0;

    public static async Task<int> RunAsync(BenchOptions options, string work)
    {
        var indexes = options.Indexes;
        var repeats = Math.Max(1, (int)Math.Ceiling(indexes / 10_000.0));
        var count = 10_000 * repeats;
        var spec = Path.Combine(work, "million.yaml");
        var marker = Path.Combine(work, "first");
        await File.WriteAllTextAsync(spec, BenchSpecs.GridSweep(
            "first-dispatch", """["/bin/sh", "-c", "touch \"$MARKER\"; exec sleep 600"]""", repeats, $$"""  env: [{name: MARKER, value: "{{marker}}"}]"""));

        Console.WriteLine(Invariant($"first dispatch: a {count:N0}-index sweep (10×10×10×10 grid × {repeats} repeats), parallelism 2, {options.Pairs} pairs"));
        Console.WriteLine(Invariant($"  A = {Path.GetRelativePath(options.RepoRoot, options.Cli)} run SPEC --store TMP   (until the first index's command runs)"));
        Console.WriteLine(Invariant($"  B = bash -c 'seq 0 {count - 1} | xargs -P2 -n1 sh -c …'   (the same command, until it first runs)"));
        var aTimes = new List<double>();
        var bTimes = new List<double>();
        var peaks = new List<double>();
        for (var pair = 0; pair < options.Pairs; pair++)
        {
            var store = Path.Combine(work, $"store-{pair}");
            var (a, peakKib) = await TimeToMarkerAsync(marker, options.Cli, ["run", spec, "--store", store], null, interrupt: true);
            var (b, _) = await TimeToMarkerAsync(marker, "/bin/bash", ["-c", $"seq 0 {count - 1} | xargs -P2 -n1 sh -c 'touch \"$MARKER\"; exec sleep 600'"], marker, interrupt: false);
            if (a is null || b is null)
            {
                Console.WriteLine("  a run never reached its first command within 60 s");
                return 1;
            }

            aTimes.Add(a.Value);
            bTimes.Add(b.Value);
            peaks.Add(peakKib / 1024.0);
            Console.WriteLine(Invariant($"  {pair + 1}   A {a:F3} s   B {b:F3} s   A peak RSS {peakKib / 1024.0:F1} MB"));
            TryDelete(store);
        }

        var aMedian = DispatchBenchmark.Median(aTimes);
        var bMedian = DispatchBenchmark.Median(bTimes);
        Console.WriteLine(Invariant($"  batchrunner run   median {aMedian:F3} s to the first index   target < {TargetSeconds:F0} s   {(aMedian < TargetSeconds ? "within" : "above")} target"));
        Console.WriteLine(Invariant($"  xargs -P2         median {bMedian:F3} s   ratio A/B {aMedian / bMedian:F1}×"));
        Console.WriteLine(Invariant($"  peak RSS of A     median {DispatchBenchmark.Median(peaks):F1} MB at its first dispatch"));
        return 0;
    }

    /// <summary>Starts the command, waits for the marker, reads its peak RSS, then stops it and waits for it to end.</summary>
    /// <param name="markerVariable">$MARKER for a command whose spec does not set it.</param>
    /// <param name="interrupt">SIGINT first (the CLI stops its attempts and records it); else the process tree is killed.</param>
    private static async Task<(double? Seconds, long PeakKib)> TimeToMarkerAsync(string marker, string program, string[] arguments, string? markerVariable, bool interrupt)
    {
        File.Delete(marker);
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        if (markerVariable is not null)
        {
            start.Environment["MARKER"] = markerVariable;
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var drainOut = process.StandardOutput.ReadToEndAsync();
        var drainErr = process.StandardError.ReadToEndAsync();
        double? seconds = null;
        long peak = 0;
        while (watch.Elapsed < TimeSpan.FromSeconds(60) && !process.HasExited)
        {
            peak = Math.Max(peak, Native.StatusKib($"/proc/{process.Id}/status", "VmHWM") ?? 0);
            if (File.Exists(marker))
            {
                seconds = watch.Elapsed.TotalSeconds;
                break;
            }

            await Task.Delay(1);
        }

        peak = Math.Max(peak, Native.StatusKib($"/proc/{process.Id}/status", "VmHWM") ?? 0);
        await StopAsync(process, interrupt);
        await Task.WhenAll(drainOut, drainErr);
        return (seconds, peak);
    }

    /// <summary>SIGINT (the CLI stops its attempts), or straight to SIGKILL of the tree; then whatever sleeps on is ended.</summary>
    private static async Task StopAsync(Process process, bool interrupt)
    {
        if (!process.HasExited && interrupt)
        {
            using var signal = Process.Start("kill", ["-INT", process.Id.ToString(CultureInfo.InvariantCulture)]);
            await signal.WaitForExitAsync();
        }

        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(interrupt ? 30 : 0));
        try
        {
            await process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        // Commands that outlive their parent (xargs' children) sleep on: end them.
        using var pkill = Process.Start("pkill", ["-x", "-f", "sleep 600"]);
        await pkill.WaitForExitAsync();
    }

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // A store still held by a process that took long to end: the work folder goes at the end anyway.
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
