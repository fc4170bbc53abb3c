using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Core.Sweeps;
using BatchRunner.Local.Execution;
using BatchRunner.Local.State;
using BatchRunner.Store;

namespace BatchRunner.Benchmarks;

/// <summary>
/// Memory of planning and ledger bookkeeping for a 100,000-index sweep: parse the spec, build the plan, then for every
/// index the work LocalExecutor does around its process (output folder, environment, attempt started, ledger row,
/// attempt finished), without starting the process. Runs in its own process so that VmHWM is its own peak.
/// </summary>
internal static class MemoryBenchmark
{
    private const string JobName = "bench-sweep";
    private const double TargetMegabytes = 300;

    /// <summary>Starts this program again with <c>memory</c>, its output going straight to ours.</summary>
    public static async Task<int> RunInChildProcessAsync(int indexes)
    {
        var self = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(self) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "BatchRunner.Benchmarks.dll"));
        }

        start.ArgumentList.Add("memory");
        start.ArgumentList.Add("--indexes");
        start.ArgumentList.Add(indexes.ToString(CultureInfo.InvariantCulture));
        await Console.Out.FlushAsync();
        using var child = Process.Start(start) ?? throw new InvalidOperationException("could not start the memory benchmark");
        await child.WaitForExitAsync();
        return child.ExitCode;
    }

    public static int Run(int indexes)
    {
        // 4 parameters of 10 values (10,000 points) × repeats: 100,000 indexes by default.
        var repeats = Math.Max(1, (int)Math.Ceiling(indexes / 10_000.0));
        var yaml = BenchSpecs.GridSweep(JobName, """["/bin/true"]""", repeats);

        var root = Directory.CreateTempSubdirectory("batchrunner-bench-memory-").FullName;
        try
        {
            var watch = Stopwatch.StartNew();
            var parsed = BatchJobParser.Parse(yaml);
            if (parsed.Job is not { } job)
            {
                Console.WriteLine("memory: the spec is invalid: " + string.Join("; ", parsed.Errors.Select(e => $"{e.Path}: {e.Message}")));
                return 1;
            }

            var runId = RunIdentity.For(job);
            var plan = new SweepPlan(job.Spec);
            var store = new LocalResultsStore(root);
            using var state = RunStateStore.Open(root);
            var started = DateTimeOffset.UtcNow;
            state.BeginInvocation(runId, job.Metadata.Namespace, JobName, RunIdentity.SpecJson(job), plan.Count, Environment.ProcessId, started);

            // What Invocation.ExecuteAsync plans before running: the recorded indexes, the attempt counters, the to-do list.
            var recorded = state.LoadIndexes(runId);
            var attemptsUsed = new int[plan.Count];
            var todo = new List<int>();
            for (var i = 0; i < plan.Count; i++)
            {
                if (!recorded.TryGetValue(i, out var record) || record.Phase != IndexPhase.Succeeded)
                {
                    todo.Add(i);
                }
            }

            var planned = watch.Elapsed;
            var pid = Environment.ProcessId;
            var rows = 0;
            foreach (var index in todo)
            {
                // LocalExecutor.Invocation.RunAttemptAsync, less ProcessLauncher.RunAsync.
                var attempt = ++attemptsUsed[index];
                var assignment = plan.For(index);
                var outputFolder = store.PrepareAttempt(JobName, runId, index, attempt);
                var logsFolder = Path.Combine(store.AttemptFolder(JobName, runId, index, attempt), StoreLayout.LogsFolder);
                var environment = WorkloadEnvironment.For(job, runId, assignment, outputFolder);
                var startedAt = TimeProvider.System.GetUtcNow();
                state.RecordAttemptStarted(runId, index, attempt, pid, ProcessIdentity.StartTicks(pid), startedAt);
                GC.KeepAlive(logsFolder);
                GC.KeepAlive(environment);
                var finishedAt = TimeProvider.System.GetUtcNow();
                var (files, bytes) = LocalResultsStore.MeasureOutput(outputFolder);
                store.WriteLedgerRow(LedgerRow.For(job, runId, assignment, attempt, AttemptOutcome.Succeeded, startedAt, finishedAt, LocalExecutor.BackendName) with
                {
                    ExitCode = 0,
                    OutputFiles = files,
                    OutputBytes = bytes,
                });
                state.RecordAttemptFinished(runId, index, attempt, AttemptOutcome.Succeeded, IndexPhase.Succeeded, null, startedAt, finishedAt);
                rows++;
                if (rows % 20_000 == 0)
                {
                    Console.Error.WriteLine(Invariant($"  … {rows:N0} of {plan.Count:N0} indexes, {watch.Elapsed.TotalSeconds:F0} s, VmRSS {Native.SelfStatusKib("VmRSS") / 1024.0:F0} MB"));
                }
            }

            state.FinishRun(runId, RunPhase.Succeeded, null, TimeProvider.System.GetUtcNow());
            var elapsed = watch.Elapsed;
            var peakKib = Native.SelfStatusKib("VmHWM");
            var rssKib = Native.SelfStatusKib("VmRSS");
            var heapBytes = GC.GetTotalMemory(forceFullCollection: false);

            // Checks, after the peak was read: the rows on disk and the indexes the state knows as succeeded.
            var onDisk = Directory.EnumerateFiles(Path.Combine(root, StoreLayout.RunPrefix(JobName, runId)), StoreLayout.LedgerFile, SearchOption.AllDirectories).Count();
            var succeeded = state.LoadIndexes(runId).Values.Count(i => i.Phase == IndexPhase.Succeeded);

            Console.WriteLine(Invariant($"memory: planning and ledger bookkeeping of a {plan.Count:N0}-index sweep (10×10×10×10 grid × {repeats} repeats), no processes, own process"));
            Console.WriteLine(Invariant($"  peak RSS (VmHWM)  {peakKib / 1024.0:F1} MB   target < {TargetMegabytes} MB   {(peakKib / 1024.0 < TargetMegabytes ? "within" : "above")} target"));
            Console.WriteLine(Invariant($"  RSS at end        {rssKib / 1024.0:F1} MB   (managed heap {heapBytes / 1048576.0:F1} MB)"));
            Console.WriteLine(Invariant($"  wall              {elapsed.TotalSeconds:F1} s   (parse + plan {planned.TotalMilliseconds:F0} ms; {(elapsed - planned).TotalMilliseconds * 1000 / Math.Max(1, rows):F0} µs per index)"));
            Console.WriteLine(Invariant($"  rows written      {rows:N0}   (ledger.json on disk {onDisk:N0}; indexes Succeeded in state.db {succeeded:N0})"));
            return rows == plan.Count && onDisk == rows && succeeded == rows ? 0 : 1;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
