using System.Diagnostics;
using System.Globalization;
using Amazon.SQS.Model;
using BatchRunner.Faults.Testing;
using BatchRunner.Kubernetes.Testing;
using BatchRunner.Operator.Tests;
using static BatchRunner.Operator.Tests.Cluster;

// The soak: for --minutes (default 20), a BatchJob every few seconds through kubectl or SQS (each SQS request sent
// twice: at-least-once delivery), two controller replicas reaching the API server and SQS through fault proxies at a
// low fault rate, the leader killed with SIGKILL every --kill-every minutes. Then every promise is checked and the
// figures printed; violations are counted, not thrown, so one run reports them all. Exit code 1 on any violation.
//   BatchRunner.Soak [--minutes M] [--kill-every K (0: never)] [--every-seconds S]
var minutes = Option("--minutes", 20);
var killEvery = Option("--kill-every", 5) is > 0 and var kill ? TimeSpan.FromMinutes(kill) : Timeout.InfiniteTimeSpan;
var every = TimeSpan.FromSeconds(Option("--every-seconds", 4));
var recovery = TimeSpan.FromMinutes(3);
const string Ns = "soak";

var fixture = new OperatorFixture();
await fixture.InitializeAsync();
await using var queues = await QueueEmulator.StartAsync();
var replicas = new List<ControllerProcess>();
var owned = new List<IAsyncDisposable>();
try
{
    await fixture.ControlPlane.CreateNamespaceAsync(Ns);
    var queue = (await queues.Client.CreateQueueAsync(new CreateQueueRequest("soak-requests") { Attributes = new() { ["VisibilityTimeout"] = "10" } })).QueueUrl;
    var deadLetter = (await queues.Client.CreateQueueAsync("soak-refused")).QueueUrl;
    var api = FaultRig.ApiServerProxy(fixture);
    var sqs = FaultRig.ProxyFor(queues.Url);
    owned.AddRange([api, sqs, PodSimulator.Start(fixture.Admin, new PodSimulatorOptions { Namespace = Ns, RunningFor = TimeSpan.FromSeconds(1) })]);
    var kubeconfig = await FaultRig.KubeconfigThroughAsync(fixture, api, "soak");
    var started = 0;
    ControllerProcess StartReplica() => ControllerProcess.Start(kubeconfig, $"soak-{started++}", QueueEmulator.AwsEnvironment,
        "--BatchRunner:LeaderElection:LeaseName=lease-soak",
        "--BatchRunner:Sqs:Enabled=true", $"--BatchRunner:Sqs:QueueUrl={queue}", $"--BatchRunner:Sqs:DeadLetterQueueUrl={deadLetter}",
        $"--BatchRunner:Sqs:EndpointUrl=http://127.0.0.1:{sqs.Port}", "--BatchRunner:Sqs:WaitTimeSeconds=1",
        $"--BatchRunner:Sqs:Tenants:AllowedNamespaces:0={Ns}", "--BatchRunner:Sqs:Tenants:AllowedImages:0=busybox:*");
    replicas.AddRange([StartReplica(), StartReplica()]);
    await Eventually.TrueAsync(async () => await LeaderAsync(replicas) is not null, TimeSpan.FromSeconds(90), "a replica leads");
    // Each replica's resident memory once it has run a while, and its last: flat over a replica's life is the target.
    var memory = new Dictionary<string, (long First, long Last, TimeSpan Lived)>(StringComparer.Ordinal);
    var born = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);
    // The leader's memory each minute, with the BatchJobs it holds by then: a plateau, or growth with what it caches.
    var series = new List<string>();
    var nextSample = TimeSpan.FromMinutes(1);

    // A low rate of faults on both servers for the whole run: one every 5-20 s on each.
    var duration = TimeSpan.FromMinutes(minutes);
    var faults = Task.WhenAll(
        FaultSchedule.RunAsync(api, duration, seed: 61206, pauses: (TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(20))),
        FaultSchedule.RunAsync(sqs, duration, seed: 1219, pauses: (TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(20)), answers: [HttpAnswer.JsonServiceUnavailable, HttpAnswer.TooManyRequests]));
    var clock = Stopwatch.StartNew();
    var lastKill = TimeSpan.Zero;
    var kills = 0;
    var names = new List<string>();
    while (clock.Elapsed < duration)
    {
        var name = $"soak-{names.Count}";
        var yaml = BatchJobYaml(Ns, name);
        if (names.Count % 2 == 0)
        {
            await fixture.ApplyAsync(yaml);
        }
        else
        {
            // Twice, as SQS may deliver it: one BatchJob must come of it.
            await queues.Client.SendMessageAsync(new SendMessageRequest(queue, yaml));
            await queues.Client.SendMessageAsync(new SendMessageRequest(queue, yaml));
        }

        names.Add(name);
        foreach (var replica in replicas.Where(r => !r.HasExited))
        {
            var since = clock.Elapsed - born.GetValueOrDefault(replica.Identity, TimeSpan.Zero);
            if (since >= TimeSpan.FromSeconds(30) && Rss(replica) is var rss and > 0)
            {
                memory[replica.Identity] = memory.TryGetValue(replica.Identity, out var seen) ? (seen.First, rss, since) : (rss, rss, since);
            }
        }

        if (clock.Elapsed >= nextSample && await LeaderAsync(replicas) is { } sampled)
        {
            series.Add(string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalMinutes:F0}m {sampled.Identity} {Rss(sampled) / 1048576.0:F0} MB ({names.Count} BatchJobs)"));
            nextSample += TimeSpan.FromMinutes(1);
        }

        if (killEvery != Timeout.InfiniteTimeSpan && clock.Elapsed - lastKill >= killEvery && await LeaderAsync(replicas) is { } leader)
        {
            await leader.KillAsync();
            replicas.Remove(leader);
            owned.Add(leader);
            replicas.Add(StartReplica());
            born[replicas[^1].Identity] = clock.Elapsed;
            lastKill = clock.Elapsed;
            kills++;
        }

        await Task.Delay(every);
    }

    await faults;
    var settled = Stopwatch.StartNew();
    var finished = await Finished();
    while (finished < names.Count || await FaultRig.InFlightAsync(queues, queue) > 0)
    {
        if (settled.Elapsed > recovery)
        {
            break;
        }

        await Task.Delay(TimeSpan.FromSeconds(2));
        finished = await Finished();
    }

    // The promises, each counted.
    var violations = new List<string>();
    foreach (var name in names)
    {
        var batchJob = await BatchJobAsync(fixture.Admin, Ns, name);
        var jobs = await JobsAsync(fixture.Admin, Ns, name);
        if (Phase(batchJob) != "Succeeded")
        {
            violations.Add($"{name} is {Phase(batchJob) ?? "missing"} {settled.Elapsed.TotalSeconds:F0} s after the faults stopped");
        }

        if (jobs.Count != 1)
        {
            violations.Add($"{name} has {jobs.Count} Jobs");
        }
        else if (jobs[0].Status?.Succeeded is { } succeeded && succeeded != 6)
        {
            violations.Add($"{name}'s Job counts {succeeded} successes of 6");
        }
    }

    var batchJobs = await FaultRig.BatchJobCountAsync(fixture, Ns);
    if (batchJobs != names.Count)
    {
        violations.Add($"{batchJobs} BatchJobs for {names.Count} requests");
    }

    if (await FaultRig.InFlightAsync(queues, queue) is var left and > 0)
    {
        violations.Add($"{left} messages still in the queue");
    }

    if ((await queues.Client.ReceiveMessageAsync(new ReceiveMessageRequest(deadLetter) { WaitTimeSeconds = 1 })).Messages is { Count: > 0 } dead)
    {
        violations.Add($"{dead.Count} requests dead-lettered");
    }

    var token = await FaultRig.ControllerTokenAsync(fixture);
    foreach (var replica in replicas.Concat(owned.OfType<ControllerProcess>()))
    {
        if (replica.Log.Contains(token, StringComparison.Ordinal) || replica.Log.Contains(QueueEmulator.AwsEnvironment["AWS_SECRET_ACCESS_KEY"], StringComparison.Ordinal))
        {
            violations.Add($"a secret in {replica.Identity}'s log");
        }

        if (replica.HasExited && replicas.Contains(replica))
        {
            violations.Add($"{replica.Identity} exited by itself ({replica.ExitCode})");
        }
    }

    foreach (var replica in replicas.Where(r => !r.HasExited && memory.ContainsKey(r.Identity)))
    {
        var seen = memory[replica.Identity];
        memory[replica.Identity] = (seen.First, Rss(replica), clock.Elapsed - born.GetValueOrDefault(replica.Identity, TimeSpan.Zero));
    }

    var p99 = await ReconcileP99Async(replicas);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
        soak: {minutes} min, a BatchJob every {every.TotalSeconds:F0} s (kubectl and SQS in turn, each SQS request sent twice), 2 replicas
          BatchJobs completed    {finished} of {names.Count} ({settled.Elapsed.TotalSeconds:F0} s after the faults stopped)
          faults injected        {FaultRig.Report("API server", api)}; {FaultRig.Report("SQS", sqs)}; leader killed {kills} times
          invariant violations   {violations.Count}{string.Concat(violations.Take(20).Select(v => "\n    " + v))}
          controller memory      {string.Join("; ", memory.OrderByDescending(m => m.Value.Lived).Select(m => $"{m.Key} {m.Value.First / 1048576.0:F0} → {m.Value.Last / 1048576.0:F0} MB over {m.Value.Lived.TotalMinutes:F1} min"))} (RSS 30 s after start, then at its end)
          leader memory          {string.Join(", ", series)}
          reconcile p99          {(p99 is { } seconds ? $"{seconds * 1000:F0} ms" : "n/a")} (the replicas running at the end, from their histograms)
        """));
    return violations.Count == 0 ? 0 : 1;

    async Task<int> Finished() =>
        (await Task.WhenAll(names.Select(n => BatchJobAsync(fixture.Admin, Ns, n)))).Count(b => Phase(b) is "Succeeded" or "Failed");
}
finally
{
    foreach (var replica in replicas)
    {
        await replica.DisposeAsync();
    }

    foreach (var item in Enumerable.Reverse(owned))
    {
        await item.DisposeAsync();
    }

    await fixture.DisposeAsync();
}

static async Task<ControllerProcess?> LeaderAsync(IEnumerable<ControllerProcess> replicas)
{
    foreach (var replica in replicas)
    {
        try
        {
            if (await replica.MetricAsync("batchrunner_leader") == 1)
            {
                return replica;
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            // Still starting.
        }
    }

    return null;
}

// Resident memory of a replica's process, from /proc (0 once it is gone).
static long Rss(ControllerProcess replica)
{
    var status = $"/proc/{replica.Pid}/status";
    var line = File.Exists(status) ? File.ReadLines(status).FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)) : null;
    return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
}

// The 99th percentile of reconcile durations: the upper bound of the first histogram bucket holding 99% of them.
static async Task<double?> ReconcileP99Async(IEnumerable<ControllerProcess> replicas)
{
    var buckets = new SortedDictionary<double, double>();
    foreach (var replica in replicas)
    {
        var (_, body) = await replica.GetAsync("/metrics");
        foreach (var line in body.Split('\n').Where(l => l.StartsWith("batchrunner_reconcile_duration_seconds_bucket{", StringComparison.Ordinal)))
        {
            var le = line[(line.IndexOf("le=\"", StringComparison.Ordinal) + 4)..];
            le = le[..le.IndexOf('"')];
            var bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture);
            buckets[bound] = buckets.GetValueOrDefault(bound) + double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }
    }

    var total = buckets.Count == 0 ? 0 : buckets.Values.Max();
    return total == 0 ? null : buckets.First(b => b.Value >= 0.99 * total).Key;
}

int Option(string name, int fallback) =>
    Array.IndexOf(args, name) is var at and >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
