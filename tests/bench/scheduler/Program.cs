// Benchmark of BatchRunner's fair-share scheduler over a simulated clock:
//   (a) Kueue's scheduler baseline shape (test/performance/scheduler/configs/baseline): 5 cohorts of 6 cluster
//       queues, each queue 350 small (1 unit, 200 ms, every 100 ms), 100 medium (5 units, 500 ms, every 500 ms) and
//       50 large (20 units, 1 s, every 1.2 s) workloads: 15,000 in all. A cohort becomes one BatchRunner queue with the
//       cohort's whole quota (6 × 20 indexes; Kueue's queues borrow up to that within a cohort), its 6 cluster queues
//       its tenants of equal weight, a workload a BatchJob of `request` indexes. Printed: the wall time this process
//       took to decide the whole run, admissions per second of it, the simulated makespan, and the mean time to the
//       first index and to all indexes running per class, beside Kueue's published figures for the shape.
//   (b) Fairness: tenant a's 10,000-index sweep holds the queue; tenant b's 10-index sweep arrives at a random moment;
//       over many trials, how long b waits for its first index, in index runtimes (p50, p95); then, with both tenants
//       wanting more than the queue holds, Jain's fairness index of their running indexes.
// Not a test: no threshold. From the repository root: ./tests/bench/scheduler.sh [--trials N]
using System.Diagnostics;
using System.Globalization;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;

var trials = args.Length == 2 && args[0] == "--trials" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200;
KueueShape.Run();
Fairness.Run(trials);

/// <summary>A simulated BatchJob: when it arrived, how many indexes, how long each runs, and what it did.</summary>
internal sealed class SimJob(string key, string tenant, string queue, string sizeClass, int priority, long sequence, long arrivalMs, int indexes, long runtimeMs)
{
    public string Key { get; } = key;
    public string Tenant { get; } = tenant;
    public string Queue { get; } = queue;
    public string Class { get; } = sizeClass;
    public int Priority { get; } = priority;
    public long Sequence { get; } = sequence;
    public long ArrivalMs { get; } = arrivalMs;
    public int Indexes { get; } = indexes;
    public long RuntimeMs { get; } = runtimeMs;
    public int Started { get; set; }
    public int Running { get; set; }
    public int Finished { get; set; }
    public long? FirstStartMs { get; set; }
    public long? AllStartedMs { get; set; }

    public Workload ToWorkload() => new(Key, Tenant, Queue, Backend.Kubernetes, Priority, Sequence, Indexes, Indexes - Finished, Running, 1000, 1L << 30);
}

/// <summary>Runs simulated jobs through the scheduler: arrivals and index completions are the events; each event time reschedules the queues it touched.</summary>
internal sealed class Simulation(IReadOnlyList<QueueDefinition> queues, IReadOnlyList<SimJob> jobs)
{
    private readonly PriorityQueue<SimJob, long> _completions = new();

    public int SchedulerCalls { get; private set; }

    /// <summary>Simulates until every job finished (or <paramref name="untilMs"/>); returns the simulated end.</summary>
    public long Run(long untilMs = long.MaxValue, Action<long>? eachStep = null)
    {
        var arrivals = new Queue<SimJob>(jobs.OrderBy(j => j.ArrivalMs).ThenBy(j => j.Sequence));
        var active = queues.ToDictionary(q => q.Name, _ => new List<SimJob>(), StringComparer.Ordinal);
        long now = 0;
        while (arrivals.Count > 0 || _completions.Count > 0)
        {
            var nextArrival = arrivals.TryPeek(out var a) ? a.ArrivalMs : long.MaxValue;
            var nextCompletion = _completions.TryPeek(out _, out var c) ? c : long.MaxValue;
            now = Math.Min(nextArrival, nextCompletion);
            if (now > untilMs)
            {
                return untilMs;
            }

            var touched = new HashSet<string>(StringComparer.Ordinal);
            while (arrivals.TryPeek(out var arriving) && arriving.ArrivalMs == now)
            {
                arrivals.Dequeue();
                active[arriving.Queue].Add(arriving);
                touched.Add(arriving.Queue);
            }

            while (_completions.TryPeek(out var done, out var at) && at == now)
            {
                _completions.Dequeue();
                done.Running--;
                done.Finished++;
                touched.Add(done.Queue);
            }

            foreach (var queueName in touched)
            {
                var members = active[queueName];
                members.RemoveAll(j => j.Finished == j.Indexes);
                var decided = FairShareScheduler.Schedule([queues.First(q => q.Name == queueName)], members.Select(j => j.ToWorkload()).ToList(), []);
                SchedulerCalls++;
                var byKey = members.ToDictionary(j => j.Key, StringComparer.Ordinal);
                foreach (var admission in decided)
                {
                    var job = byKey[admission.Key];
                    var start = Math.Min(admission.Allowance - job.Running, job.Indexes - job.Started);
                    for (var i = 0; i < start; i++)
                    {
                        job.FirstStartMs ??= now;
                        job.Started++;
                        job.Running++;
                        _completions.Enqueue(job, now + job.RuntimeMs);
                    }

                    if (job.Started == job.Indexes)
                    {
                        job.AllStartedMs ??= now;
                    }
                }
            }

            eachStep?.Invoke(now);
        }

        return now;
    }
}

internal static class KueueShape
{
    public static void Run()
    {
        var queues = Enumerable.Range(0, 5).Select(c => new QueueDefinition($"cohort-{c}", [Backend.Kubernetes],
            new Dictionary<Backend, Quota> { [Backend.Kubernetes] = new(6 * 20, long.MaxValue, long.MaxValue) }, new Dictionary<string, double>(), 1, TimeSpan.FromMinutes(5))).ToList();
        var jobs = new List<SimJob>();
        long sequence = 0;
        foreach (var cohort in Enumerable.Range(0, 5))
        {
            foreach (var cq in Enumerable.Range(0, 6))
            {
                var tenant = $"cq-{cohort}-{cq}";
                foreach (var (name, count, everyMs, request, runtimeMs, priority) in new[] { ("small", 350, 100L, 1, 200L, 50), ("medium", 100, 500L, 5, 500L, 100), ("large", 50, 1200L, 20, 1000L, 200) })
                {
                    for (var i = 0; i < count; i++)
                    {
                        jobs.Add(new SimJob($"{tenant}/{name}-{i}", tenant, $"cohort-{cohort}", name, priority, sequence++, i * everyMs, request, runtimeMs));
                    }
                }
            }
        }

        var simulation = new Simulation(queues, jobs);
        var clock = Stopwatch.StartNew();
        var end = simulation.Run();
        clock.Stop();

        Console.WriteLine("(a) Kueue's scheduler baseline shape: 15,000 workloads (10,500 small, 3,000 medium, 1,500 large), 30 queues over 5 groups");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  BatchRunner: decided in {clock.Elapsed.TotalSeconds:0.00} s of wall time ({jobs.Count / clock.Elapsed.TotalSeconds:N0} admissions/s, {simulation.SchedulerCalls:N0} scheduler calls, {clock.Elapsed.TotalMilliseconds * 1000 / simulation.SchedulerCalls:0} µs each)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  Kueue:       351 s of wall time for the same shape (published baseline, a real-time run: its wall includes the runtimes)   ratio {351 / clock.Elapsed.TotalSeconds:0}× "));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  simulated makespan {end / 1000.0:0.0} s (Kueue: 351 s)"));
        Console.WriteLine("  mean time to first index / to all indexes running (Kueue: mean time to admission, all at once)");
        foreach (var (size, kueue) in new[] { ("small", 215.5), ("medium", 76.8), ("large", 6.7) })
        {
            var of = jobs.Where(j => j.Class == size).ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    {size,-7} {of.Average(j => j.FirstStartMs!.Value - j.ArrivalMs) / 1000:0.0} s / {of.Average(j => j.AllStartedMs!.Value - j.ArrivalMs) / 1000:0.0} s   (Kueue {kueue:0.0} s)"));
        }
    }
}

internal static class Fairness
{
    public static void Run(int trials)
    {
        var queue = new QueueDefinition("shared", [Backend.Kubernetes], new Dictionary<Backend, Quota> { [Backend.Kubernetes] = new(100, long.MaxValue, long.MaxValue) },
            new Dictionary<string, double>(), 1, TimeSpan.FromMinutes(30));
        var random = new Random(20261205);
        var waits = new List<double>();
        for (var trial = 0; trial < trials; trial++)
        {
            // Index runtimes around 10 s (±30%): a's big sweep is in full swing when b's small one arrives.
            var runtime = 7_000 + random.Next(6_000);
            var arrival = 60_000 + random.Next(60_000);
            var a = new SimJob("a/big", "a", "shared", "big", 0, 0, 0, 10_000, runtime);
            var b = new SimJob("b/small", "b", "shared", "small", 0, 1, arrival, 10, runtime);
            new Simulation([queue], [a, b]).Run(untilMs: arrival + 10L * runtime);
            waits.Add((double)(b.FirstStartMs!.Value - arrival) / runtime);
        }

        waits.Sort();
        Console.WriteLine($"(b) Fairness: tenant a's 10,000-index sweep holds a 100-index queue; tenant b's 10-index sweep arrives ({trials} trials)");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  b's first index starts after p50 {Percentile(waits, 0.5):0.00}, p95 {Percentile(waits, 0.95):0.00}, max {waits[^1]:0.00} index runtimes (target p95 within 1)"));

        // Both want more than the queue holds: sample their running indexes once b has arrived.
        var x = new SimJob("a/big", "a", "shared", "big", 0, 0, 0, 10_000, 10_000);
        var y = new SimJob("b/big", "b", "shared", "big", 0, 1, 95_000, 10_000, 9_000);
        double sumA = 0, sumB = 0;
        var samples = 0;
        new Simulation([queue], [x, y]).Run(untilMs: 600_000, now =>
        {
            if (now >= 95_000 + 20_000)
            {
                (sumA, sumB, samples) = (sumA + x.Running, sumB + y.Running, samples + 1);
            }
        });
        var (meanA, meanB) = (sumA / samples, sumB / samples);
        var jain = (meanA + meanB) * (meanA + meanB) / (2 * (meanA * meanA + meanB * meanB));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  both wanting more than the queue: mean running a {meanA:0.0}, b {meanB:0.0}; Jain's fairness index {jain:0.000} (target ≥ 0.95)"));
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
