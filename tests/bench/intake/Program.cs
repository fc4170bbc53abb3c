// Benchmark of the SQS intake, against fauxqs on 127.0.0.1 (not a test: it prints figures).
//
//   ceiling  N requests waiting in a queue, drained by a bare ReceiveMessage(10) + DeleteMessageBatch loop
//   intake   N requests waiting in a queue, read, parsed, guarded and recorded as local jobs (SubmissionStore,
//            fsync'd) by SqsIntakeConsumer, each message deleted after its job is on disk
//
// Both use the same SDK client settings, the same server and as many concurrent receive loops. The figure of
// merit is intake / ceiling (target >= 0.95 for JSON bodies, 0.7 for YAML). Options: --requests N (10000) --receivers N and --concurrency N (the intake's defaults)
// --rounds N (1) --format json|yaml (both, JSON first: what SDK producers send; YAML: what `batchrunner submit` of a .yaml sends).
using System.Diagnostics;
using System.Globalization;
using Amazon.SQS.Model;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Sqs;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Controller.Intake;
using BatchRunner.Local.Intake;
using Microsoft.Extensions.Logging.Abstractions;
using Prometheus;

var requests = Option("--requests", 10_000);
var receivers = Option("--receivers", new SqsIntakeOptions().Receivers);
var concurrency = Option("--concurrency", new SqsIntakeOptions().MaxConcurrency);
var rounds = Option("--rounds", 1);
var formatAt = Array.IndexOf(args, "--format");
string[] formats = formatAt >= 0 && formatAt + 1 < args.Length ? [args[formatAt + 1]] : ["json", "yaml"];

var server = Fauxqs.Shared;
var scratch = Directory.CreateTempSubdirectory("batchrunner-intake-bench-").FullName;
try
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"SQS intake benchmark: {requests:N0} requests waiting in fauxqs ({server.Url}), AWSSDK.SQS; {receivers} receive loop(s); intake {concurrency} messages at once; {Environment.ProcessorCount} cores"));
    var ratios = new List<double>();
    var byFormat = new List<(string Format, double Ratio)>();
    for (var round = 1; round <= rounds; round++)
    foreach (var format in formats)
    {
        // The two sides take turns going first, so neither always meets a server the other warmed up.
        TimeSpan ceiling = default, recorded = default, drained = default;
        (double Self, double Server) ceilingCpu = default, intakeCpu = default;
        for (var side = 0; side < 2; side++)
        {
            if ((side + round) % 2 == 1)
            {
                var cpu = Cpu.Start(server.ProcessId);
                ceiling = await CeilingAsync(round, format);
                ceilingCpu = cpu.Stop();
            }
            else
            {
                (recorded, drained, intakeCpu) = await IntakeAsync(round, format);
            }
        }

        var ratio = ceiling.TotalSeconds / recorded.TotalSeconds;
        ratios.Add(ratio);
        byFormat.Add((format, ratio));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round}, {format} bodies"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ceiling  receive + delete drain loop      {ceiling.TotalSeconds,7:F2} s  {requests / ceiling.TotalSeconds,8:F0} requests/s"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  intake   recorded as jobs (local sink)   {recorded.TotalSeconds,7:F2} s  {requests / recorded.TotalSeconds,8:F0} requests/s  (queue empty at {drained.TotalSeconds:F2} s)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ratio    intake / ceiling                {ratio,7:F2}    (target >= {Target(format):F2})"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  cpu per request (this process + fauxqs): ceiling {ceilingCpu.Self * 1e6 / requests:F0} + {ceilingCpu.Server * 1e6 / requests:F0} µs, intake {intakeCpu.Self * 1e6 / requests:F0} + {intakeCpu.Server * 1e6 / requests:F0} µs"));
    }

    if (ratios.Count > 1)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median ratio over {ratios.Count} runs: {ratios.Order().ElementAt(ratios.Count / 2):F2}"));
        foreach (var group in byFormat.GroupBy(r => r.Format))
        {
            var ordered = group.Select(r => r.Ratio).Order().ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"median ratio, {group.Key} bodies: {ordered[ordered.Count / 2]:F2} (min {ordered[0]:F2}, max {ordered[^1]:F2}; target >= {Target(group.Key):F2})"));
        }
    }
}
finally
{
    server.Dispose();
    Directory.Delete(scratch, recursive: true);
}

async Task<TimeSpan> CeilingAsync(int round, string format)
{
    var queue = await server.CreateQueueAsync($"bench-ceiling-{round}-{Guid.NewGuid():N}");
    await SeedAsync(queue, format);
    using var sqs = server.Client();
    var deleted = 0;
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, receivers).Select(_ => Task.Run(async () =>
    {
        while (Volatile.Read(ref deleted) < requests)
        {
            var response = await sqs.ReceiveMessageAsync(new ReceiveMessageRequest { QueueUrl = queue, MaxNumberOfMessages = 10, WaitTimeSeconds = 1 }, default);
            if (response.Messages is not { Count: > 0 } messages)
            {
                continue;
            }

            await sqs.DeleteMessageBatchAsync(new DeleteMessageBatchRequest
            {
                QueueUrl = queue,
                Entries = [.. messages.Select((m, i) => new DeleteMessageBatchRequestEntry { Id = i.ToString(CultureInfo.InvariantCulture), ReceiptHandle = m.ReceiptHandle })],
            }, default);
            Interlocked.Add(ref deleted, messages.Count);
        }
    })));
    return clock.Elapsed;
}

async Task<(TimeSpan Recorded, TimeSpan Drained, (double Self, double Server) Cpu)> IntakeAsync(int round, string format)
{
    var queue = await server.CreateQueueAsync($"bench-intake-{round}-{Guid.NewGuid():N}");
    var deadLetter = await server.CreateQueueAsync($"bench-intake-dlq-{round}-{Guid.NewGuid():N}");
    await SeedAsync(queue, format);
    var root = Path.Combine(scratch, $"round-{round}-{format}");
    await using var store = SubmissionStore.Open(root);
    var options = new SqsIntakeOptions
    {
        Enabled = true,
        QueueUrl = queue,
        DeadLetterQueueUrl = deadLetter,
        EndpointUrl = server.Url,
        Region = Fauxqs.Region,
        WaitTimeSeconds = 1,
        Receivers = receivers,
        MaxConcurrency = concurrency,
        Tenants = new TenantGuardOptions { AllowedCommands = ["/bin/sh"] },
    };
    var metrics = new IntakeMetrics(new CollectorRegistry());
    using var sqs = server.Client();
    using var consumer = new SqsIntakeConsumer(sqs, new LocalJobSink(store, root), options, metrics, TimeProvider.System, NullLogger<SqsIntakeConsumer>.Instance);
    using var stop = new CancellationTokenSource();
    var cpu = Cpu.Start(server.ProcessId);
    var clock = Stopwatch.StartNew();
    var running = consumer.RunAsync(stop.Token);
    while (metrics.Messages.WithLabels("created").Value < requests)
    {
        if (running.IsCompleted)
        {
            await running; // surfaces the failure
            throw new InvalidOperationException("the consumer stopped early");
        }

        await Task.Delay(5);
    }

    var recorded = clock.Elapsed;
    while (await server.CountAsync(queue) != (0, 0))
    {
        await Task.Delay(5);
    }

    var drained = clock.Elapsed;
    var used = cpu.Stop();
    await stop.CancelAsync();
    await running;
    var jobs = store.List().Count;
    var refused = (await server.CountAsync(deadLetter)).Visible;
    if (jobs != requests || refused != 0)
    {
        throw new InvalidOperationException($"expected {requests} jobs and no refusal, got {jobs} jobs and {refused} refusals");
    }

    return (recorded, drained, used);
}

async Task SeedAsync(string queue, string format)
{
    using var sqs = server.Client();
    var batches = Enumerable.Range(0, requests).Chunk(10).ToList();
    await Parallel.ForEachAsync(batches, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (batch, cancellation) =>
    {
        var response = await sqs.SendMessageBatchAsync(new SendMessageBatchRequest
        {
            QueueUrl = queue,
            Entries = [.. batch.Select(i => new SendMessageBatchRequestEntry { Id = i.ToString(CultureInfo.InvariantCulture), MessageBody = format == "json" ? JsonBody(i) : Body(i) })],
        }, cancellation);
        if (response.Failed is { Count: > 0 } failed)
        {
            throw new InvalidOperationException($"seeding failed: {failed[0].Code} {failed[0].Message}");
        }
    });
}

// A realistic request: a small sweep, one per name.
// JSON bodies, the common door, at 0.95 of the bare loop (issue 18); YAML bodies pay for YAML parsing: 0.7.
static double Target(string format) => format == "json" ? 0.95 : 0.70;

static string Body(int i) => string.Create(CultureInfo.InvariantCulture, $$"""
    apiVersion: batchrunner.io/v1alpha1
    kind: BatchJob
    metadata: {name: bench-{{i:D5}}}
    spec:
      command: ["/bin/sh", "-c", "echo {\"x\": $BATCHRUNNER_INDEX} > $BATCHRUNNER_OUTPUT_DIR/out.jsonl"]
      resources: {cpu: 500m, memory: 512Mi}
      parallelism: 2
      sweep:
        grid: {rate: [0.1, 0.2, 0.3], servers: [1, 2]}
        repeats: 2
        seed: {{i}}
      retry: {attempts: 2, backoffSeconds: 1}
      timeoutSeconds: 60
    """);

// The same request as JSON, as a producer using an SDK would send it.
static string JsonBody(int i) => string.Create(CultureInfo.InvariantCulture, $$$"""
    {"apiVersion":"batchrunner.io/v1alpha1","kind":"BatchJob","metadata":{"name":"bench-{{{i:D5}}}"},"spec":{"command":["/bin/sh","-c","echo {\"x\": $BATCHRUNNER_INDEX} > $BATCHRUNNER_OUTPUT_DIR/out.jsonl"],"resources":{"cpu":"500m","memory":"512Mi"},"parallelism":2,"sweep":{"grid":{"rate":[0.1,0.2,0.3],"servers":[1,2]},"repeats":2,"seed":{{{i}}}},"retry":{"attempts":2,"backoffSeconds":1},"timeoutSeconds":60}}
    """);

int Option(string name, int fallback)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
}

/// <summary>CPU seconds used by this process and by the server process between Start and Stop (wall time lies on a busy machine).</summary>
internal sealed class Cpu
{
    private readonly int _server;
    private readonly TimeSpan _self;
    private readonly double _serverSeconds;

    private Cpu(int server)
    {
        _server = server;
        _self = Process.GetCurrentProcess().TotalProcessorTime;
        _serverSeconds = ServerSeconds(server);
    }

    public static Cpu Start(int server) => new(server);

    public (double Self, double Server) Stop() =>
        ((Process.GetCurrentProcess().TotalProcessorTime - _self).TotalSeconds, ServerSeconds(_server) - _serverSeconds);

    // utime + stime of /proc/PID/stat, in clock ticks of 1/100 s.
    private static double ServerSeconds(int pid)
    {
        var fields = File.ReadAllText($"/proc/{pid}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }
}
