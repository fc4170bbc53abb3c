using System.Diagnostics;
using System.Globalization;
using Amazon.Runtime;
using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Protocol;
using BatchRunner.Aws.Tests.Batch;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using Microsoft.Extensions.Logging.Abstractions;

// Figures, not a verdict: how many AWS Batch API calls, and how long until a sweep is fully submitted, when
// BatchRunner submits it as array jobs against one SubmitJob per index; both under AWS's 50 SubmitJob calls per
// second (a token bucket on the client; the stub endpoint throttles like AWS beyond that).
var indexes = Option("--indexes", 10_000);
var peerIndexes = Option("--peer-indexes", indexes);
var rate = Option("--rate", 50);

await using var server = await StubBatchServer.StartAsync();
server.AdvanceOnDescribe = false;
server.SubmitsPerSecond = rate;
using var api = new BatchApiClient(new AwsJsonClient(
    BatchApiClient.ServiceOptions("us-east-1", server.Url.ToString()), AwsJsonClient.CamelCaseJson(),
    credentials: new StaticAwsCredentialSource(new ImmutableCredentials("AKIDEXAMPLE", "secret", null))));
var store = Directory.CreateTempSubdirectory("batchrunner-bench-awsbatch-").FullName;
var options = new AwsBatchOptions
{
    Enabled = true, JobQueue = "batchrunner", ExecutionRoleArn = "arn:aws:iam::123456789012:role/execution", DefaultResultsUri = store, SubmitJobsPerSecond = rate,
};
var job = BatchJobParser.Parse($"""
    apiVersion: batchrunner.io/v1alpha1
    kind: BatchJob
    metadata: {"{"}name: bench-sweep{"}"}
    spec:
      image: registry.example/sim:1
      command: [python, sim.py]
      completions: {indexes}
      parallelism: {indexes}
      backend: aws-batch
    """).GetJobOrThrow();
Console.WriteLine($"AWS Batch submission benchmark: {indexes:N0} indexes, SubmitJob limit {rate}/s (client token bucket; the stub throttles beyond it)");
Console.WriteLine();

// 1. BatchRunner: arrays of up to 10,000 children, found-by-name check first, one DescribeJobDefinitions/Register
// (a first, small run warms up the code paths, so both approaches are measured warm).
using (var limiter = new SubmitRateLimiter(rate))
{
    var dispatcher = new AwsBatchDispatcher(api, options, new BatchRunner.Aws.S3.StoreRunSpecPublisher(new BatchRunner.Aws.S3.ResultsOptions(), path => new BatchRunner.Store.LocalResultsStore(path)), limiter, TimeProvider.System, NullLogger<AwsBatchDispatcher>.Instance);
    var warm = BatchJobParser.Parse("""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: warm-up}
        spec: {image: "registry.example/other:1", command: [python, sim.py], completions: 2, parallelism: 2, backend: aws-batch}
        """).GetJobOrThrow();
    await dispatcher.AdvanceAsync(warm, RunIdentity.For(warm), null, null, allowSubmit: true, allowance: null, default);
    await Task.Delay(TimeSpan.FromSeconds(1));
    var baseline = (Calls: server.Calls.Count, Submits: server.CallCount("SubmitJob"));
    var clock = Stopwatch.StartNew();
    var progress = await dispatcher.AdvanceAsync(job, RunIdentity.For(job), null, null, allowSubmit: true, allowance: null, default);
    var elapsed = clock.Elapsed;
    if (progress.State.NextIndex != indexes)
    {
        throw new InvalidOperationException($"not fully submitted: {progress.State.NextIndex} of {indexes}");
    }

    var calls = server.Calls.Count - baseline.Calls;
    Report("batchrunner (array jobs)", elapsed, calls, server.CallCount("SubmitJob") - baseline.Submits, server.Throttled);
    arrays = (calls, elapsed);
}

// 2. The peer: one SubmitJob per index (a plain job each, BATCHRUNNER_INDEX_OFFSET = the index), same bucket.
var before = (Calls: server.Calls.Count, Submits: server.CallCount("SubmitJob"), Throttled: server.Throttled);
using (var limiter = new SubmitRateLimiter(rate))
{
    var definition = server.Jobs[^1].Definition;
    var clock = Stopwatch.StartNew();
    for (var index = 0; index < peerIndexes; index++)
    {
        await limiter.AcquireAsync(default);
        await api.SubmitJobAsync(new SubmitJobRequest
        {
            JobName = string.Create(CultureInfo.InvariantCulture, $"bench-sweep-peer-{index}"),
            JobQueue = "batchrunner",
            JobDefinition = definition,
            ContainerOverrides = new ContainerOverrides { Environment = [new NameValue("BATCHRUNNER_INDEX_OFFSET", index.ToString(CultureInfo.InvariantCulture))] },
        }, default);
    }

    var elapsed = clock.Elapsed;
    var calls = server.Calls.Count - before.Calls;
    Report(peerIndexes == indexes ? "one SubmitJob per index" : $"one SubmitJob per index ({peerIndexes:N0} measured)", elapsed, calls, server.CallCount("SubmitJob") - before.Submits, server.Throttled - before.Throttled);
    var scale = (double)indexes / peerIndexes;
    var peerCalls = calls * scale;
    var peerTime = elapsed * scale;
    Console.WriteLine();
    if (peerIndexes != indexes)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peer scaled to {indexes:N0} indexes: {peerCalls:N0} calls, {peerTime.TotalSeconds:N1} s"));
    }

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"ratio: {peerCalls / arrays.Calls:N0}x fewer API calls, {peerTime.TotalSeconds / Math.Max(arrays.Elapsed.TotalSeconds, 0.001):N0}x sooner fully submitted"));
}

// 3. A rerun: 37 failed indexes of a finished 10,000-index sweep go again as one array over them, against submitting
// the whole sweep again; API calls and time until the new attempts are submitted, and children (attempts) made.
Console.WriteLine();
server.AdvanceOnDescribe = true;
server.SubmitsPerSecond = 0;
using (var limiter = new SubmitRateLimiter(rate))
{
    var dispatcher = new AwsBatchDispatcher(api, options, new BatchRunner.Aws.S3.StoreRunSpecPublisher(new BatchRunner.Aws.S3.ResultsOptions(), path => new BatchRunner.Store.LocalResultsStore(path)), limiter, TimeProvider.System, NullLogger<AwsBatchDispatcher>.Instance);
    var rerunJob = job with { Metadata = job.Metadata with { Name = "bench-rerun" } };
    server.ExitCode = (index, _) => index % 271 == 7 ? 1 : 0;
    var finished = await dispatcher.AdvanceAsync(rerunJob, RunIdentity.For(rerunJob), null, null, allowSubmit: true, allowance: null, default);
    while (!finished.IsTerminal)
    {
        finished = await dispatcher.AdvanceAsync(rerunJob, RunIdentity.For(rerunJob), finished.State, null, allowSubmit: true, allowance: null, default);
    }

    var failed = IndexRanges.Parse(finished.FailedIndexes);
    server.ExitCode = (_, _) => 0;

    var before3 = (Calls: server.Calls.Count, Submits: server.CallCount("SubmitJob"), Children: server.Jobs.Sum(j => j.Size));
    var clock = Stopwatch.StartNew();
    var rerun = await dispatcher.AdvanceAsync(rerunJob, RunIdentity.For(rerunJob), finished.State, null, allowSubmit: true, allowance: null, default, (1, failed));
    var rerunElapsed = clock.Elapsed;
    var rerunCalls = server.Calls.Count - before3.Calls;
    var rerunChildren = server.Jobs.Sum(j => j.Size) - before3.Children;
    if (rerun.State.RerunNext != failed.Count)
    {
        throw new InvalidOperationException($"rerun not fully submitted: {rerun.State.RerunNext} of {failed.Count}");
    }

    var again = rerunJob with { Metadata = rerunJob.Metadata with { Name = "bench-again" } };
    var before4 = (Calls: server.Calls.Count, Children: server.Jobs.Sum(j => j.Size));
    clock.Restart();
    await dispatcher.AdvanceAsync(again, RunIdentity.For(again), null, null, allowSubmit: true, allowance: null, default);
    var wholeElapsed = clock.Elapsed;
    var wholeCalls = server.Calls.Count - before4.Calls;
    var wholeChildren = server.Jobs.Sum(j => j.Size) - before4.Children;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"rerun of {failed.Count} failed indexes of {indexes:N0}:"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"batchrunner rerun --failed",-34} {rerunCalls,7:N0} API calls   {rerunChildren,6:N0} attempts submitted   in {rerunElapsed.TotalSeconds,8:N3} s"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"the whole sweep again",-34} {wholeCalls,7:N0} API calls   {wholeChildren,6:N0} attempts submitted   in {wholeElapsed.TotalSeconds,8:N3} s"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio: {(double)wholeChildren / Math.Max(1, rerunChildren):N0}x fewer attempts, {(double)wholeCalls / Math.Max(1, rerunCalls):N1}x the API calls"));
}

Directory.Delete(store, recursive: true);
return 0;

static void Report(string name, TimeSpan elapsed, int calls, int submits, int throttled) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{name,-34} {calls,7:N0} API calls ({submits:N0} SubmitJob, {throttled} throttled)   fully submitted in {elapsed.TotalSeconds,8:N2} s"));

int Option(string name, int fallback)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
}

internal static partial class Program
{
    private static (int Calls, TimeSpan Elapsed) arrays;
}
