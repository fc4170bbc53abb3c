using BatchRunner.Benchmarks;

// Benchmarks of the local backend. Prints figures and the target each is compared against; no pass/fail.
//   BatchRunner.Benchmarks [all]     dispatch here, then memory in a child process (its peak RSS is its own)
//   BatchRunner.Benchmarks dispatch  2,000 no-op indexes through `batchrunner run` (native and JIT builds) vs `xargs -P2`
//   BatchRunner.Benchmarks memory    planning and ledger bookkeeping of a 100,000-index sweep, without processes
//   BatchRunner.Benchmarks first     time to the first index of a sweep of --indexes (use 1000000) vs xargs -P2
// Options: --repo DIR (default: found above this program), --cli PATH (default: the native CLI ./batchrunner builds),
//          --pairs N (5), --count N (2000), --indexes N (100000).
var options = BenchOptions.Parse(args);
if (options is null)
{
    await Console.Error.WriteLineAsync("usage: BatchRunner.Benchmarks [all|dispatch|memory|first] [--repo DIR] [--cli PATH] [--pairs N] [--count N] [--indexes N]");
    return 2;
}

if (options.Mode == "memory")
{
    return MemoryBenchmark.Run(options.Indexes);
}

if (options.Mode == "first")
{
    var scratch = Directory.CreateTempSubdirectory("batchrunner-bench-first-").FullName;
    try
    {
        return await FirstDispatchBenchmark.RunAsync(options, scratch);
    }
    finally
    {
        Directory.Delete(scratch, recursive: true);
    }
}

// The dispatch stores are deleted only once nothing else is measured (see DispatchBenchmark.RunAsync).
var work = Directory.CreateTempSubdirectory("batchrunner-bench-dispatch-").FullName;
try
{
    var dispatch = await DispatchBenchmark.RunAsync(options, work);
    if (options.Mode == "dispatch")
    {
        return dispatch;
    }

    Console.WriteLine();
    var memory = await MemoryBenchmark.RunInChildProcessAsync(options.Indexes);
    return Math.Max(dispatch, memory);
}
finally
{
    Directory.Delete(work, recursive: true);
}
