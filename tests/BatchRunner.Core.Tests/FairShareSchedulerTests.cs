using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using Xunit;

namespace BatchRunner.Core.Tests;

/// <summary>The scheduler as a function of state: priorities, weights, decay, quotas, lending, arrivals, edits, restarts.</summary>
public sealed class FairShareSchedulerTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);

    private static QueueDefinition Queue(int indexes = 10, long milliCpu = long.MaxValue, IReadOnlyDictionary<string, double>? weights = null, string name = "default") =>
        new(name, [Backend.Kubernetes, Backend.Local], new Dictionary<Backend, Quota> { [Backend.Kubernetes] = new(indexes, milliCpu, long.MaxValue) },
            weights ?? new Dictionary<string, double>(), 1, TimeSpan.FromHours(1));

    private static Workload Job(string key, string tenant, int parallelism, int remaining = 10_000, int running = 0, int priority = 0, long sequence = 0, long milliCpu = 1000, string queue = "default", Backend? backend = null) =>
        new(key, tenant, queue, backend ?? Backend.Kubernetes, priority, sequence, parallelism, remaining, running, milliCpu, 1L << 30);

    private static Dictionary<string, Admission> Run(QueueDefinition queue, params Workload[] workloads) => Run([queue], [], workloads);

    private static Dictionary<string, Admission> Run(IReadOnlyList<QueueDefinition> queues, IReadOnlyList<TenantUsage> usage, params Workload[] workloads) =>
        FairShareScheduler.Schedule(queues, workloads, usage).ToDictionary(a => a.Key);

    [Fact]
    public void A_lone_sweep_gets_what_it_asks_within_the_quota_and_never_more_than_its_parallelism()
    {
        var small = Run(Queue(indexes: 10), Job("a/small", "a", parallelism: 4))["a/small"];
        var large = Run(Queue(indexes: 10), Job("a/large", "a", parallelism: 50))["a/large"];
        var finishing = Run(Queue(indexes: 10), Job("a/tail", "a", parallelism: 8, remaining: 3))["a/tail"];

        Assert.Equal((4, false), (small.Allowance, small.IsWaiting));
        Assert.Equal((10, WaitReasons.QuotaExhausted, 1), (large.Allowance, large.Reason, large.Position));
        Assert.Equal((3, false), (finishing.Allowance, finishing.IsWaiting));
    }

    [Fact]
    public void A_small_sweep_arriving_behind_a_large_one_takes_freed_indexes_until_the_shares_meet_and_nothing_is_killed()
    {
        // Tenant a's 10,000-index sweep holds the whole quota; b's 10-index sweep arrives. The fair answer is five
        // each: a may start nothing more until it is down to five (nothing of it is killed), and b is first in line
        // for the room a's indexes free as they finish.
        var full = Run(Queue(indexes: 10), Job("a/large", "a", parallelism: 100, running: 10, sequence: 1), Job("b/small", "b", parallelism: 10, remaining: 10, sequence: 2));
        Assert.Equal(5, full["a/large"].Allowance);
        Assert.Equal((0, WaitReasons.QuotaExhausted, 1), (full["b/small"].Allowance, full["b/small"].Reason, full["b/small"].Position));
        Assert.Equal((WaitReasons.TenantOverShare, 2), (full["a/large"].Reason, full["a/large"].Position));
        Assert.Contains("tenant a holds 10 indexes, a fair share of 0.5 (weight 1) is 5; b (share 0.5, weight 1) is served first", full["a/large"].Message, StringComparison.Ordinal);

        // Four of a's indexes finish: all four go to b.
        var freed = Run(Queue(indexes: 10), Job("a/large", "a", parallelism: 100, running: 6, sequence: 1), Job("b/small", "b", parallelism: 10, remaining: 10, sequence: 2));
        Assert.Equal((5, 4), (freed["a/large"].Allowance, freed["b/small"].Allowance));

        // Two more: the shares meet, five each.
        var even = Run(Queue(indexes: 10), Job("a/large", "a", parallelism: 100, running: 4, sequence: 1), Job("b/small", "b", parallelism: 10, remaining: 10, running: 4, sequence: 2));
        Assert.Equal((5, 5), (even["a/large"].Allowance, even["b/small"].Allowance));
    }

    public static TheoryData<double, double, int, int> Weights => new()
    {
        { 1, 1, 6, 6 },
        { 2, 1, 8, 4 },
        { 3, 1, 9, 3 },
        { 1, 0.5, 8, 4 },
    };

    [Theory]
    [MemberData(nameof(Weights))]
    public void Tenants_share_a_full_queue_in_proportion_to_their_weights(double weightA, double weightB, int expectedA, int expectedB)
    {
        var queue = Queue(indexes: 12, weights: new Dictionary<string, double> { ["a"] = weightA, ["b"] = weightB });

        var result = Run(queue, Job("a/x", "a", parallelism: 100), Job("b/y", "b", parallelism: 100));

        Assert.Equal((expectedA, expectedB), (result["a/x"].Allowance, result["b/y"].Allowance));
    }

    [Fact]
    public void An_idle_tenant_s_share_is_lent_to_the_one_that_waits()
    {
        var queue = Queue(indexes: 12, weights: new Dictionary<string, double> { ["a"] = 1, ["b"] = 5 });

        var result = Run(queue, Job("a/x", "a", parallelism: 100), Job("b/y", "b", parallelism: 2));

        Assert.Equal((10, 2), (result["a/x"].Allowance, result["b/y"].Allowance));
    }

    [Fact]
    public void Within_a_tenant_higher_priority_goes_first_then_first_come_and_the_rest_say_whom_they_wait_behind()
    {
        var result = Run(Queue(indexes: 6),
            Job("a/early", "a", parallelism: 4, sequence: 1),
            Job("a/urgent", "a", parallelism: 4, priority: 10, sequence: 3),
            Job("a/late", "a", parallelism: 4, sequence: 2));

        Assert.Equal((4, 2, 0), (result["a/urgent"].Allowance, result["a/early"].Allowance, result["a/late"].Allowance));
        Assert.Equal((WaitReasons.QuotaExhausted, 1), (result["a/early"].Reason, result["a/early"].Position));
        Assert.Equal((WaitReasons.BehindHigherPriority, 2), (result["a/late"].Reason, result["a/late"].Position));
        Assert.Equal("behind a/early (priority 0) of the same tenant, which waits too", result["a/late"].Message);
        Assert.False(result["a/urgent"].IsWaiting);
    }

    [Fact]
    public void A_cpu_quota_limits_by_the_cpu_indexes_request_and_the_message_gives_the_numbers()
    {
        var result = Run(Queue(indexes: 100, milliCpu: 8000), Job("a/heavy", "a", parallelism: 10, milliCpu: 3000));

        Assert.Equal((2, WaitReasons.QuotaExhausted), (result["a/heavy"].Allowance, result["a/heavy"].Reason));
        Assert.Contains("2 indexes of 100 indexes, 6000m cpu of 8000m cpu", result["a/heavy"].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dominant_shares_are_compared_so_a_cpu_heavy_tenant_gets_fewer_indexes_than_a_light_one()
    {
        // Each of a's indexes takes a quarter of the cpu (its dominant share); each of b's a tenth of the indexes. Filling
        // keeps their dominant shares level (2 and 5 indexes: both at one half) until the indexes run out.
        var result = Run(Queue(indexes: 10, milliCpu: 4000), Job("a/heavy", "a", parallelism: 10, milliCpu: 1000), Job("b/light", "b", parallelism: 10, milliCpu: 100));

        Assert.Equal((3, 7), (result["a/heavy"].Allowance, result["b/light"].Allowance));
    }

    [Fact]
    public void Past_usage_counts_against_a_tenant_and_is_forgotten_with_the_half_life()
    {
        var queue = Queue(indexes: 12);
        var heavy = new TenantUsage("default", "a", ShareSeconds: 0.5 * 3600, At: Now);

        var recent = Run([queue], [heavy], Job("a/x", "a", parallelism: 100), Job("b/y", "b", parallelism: 100));
        var later = Run([queue], [heavy.Advance(Now.AddHours(10), 0, queue.UsageHalfLife)], Job("a/x", "a", parallelism: 100), Job("b/y", "b", parallelism: 100));

        Assert.Equal((3, 9), (recent["a/x"].Allowance, recent["b/y"].Allowance));
        Assert.Equal((6, 6), (later["a/x"].Allowance, later["b/y"].Allowance));
    }

    [Fact]
    public void Usage_halves_every_half_life_and_grows_with_what_ran()
    {
        var usage = new TenantUsage("q", "a", 100, Now);

        Assert.Equal(50, usage.Advance(Now.AddHours(1), 0, TimeSpan.FromHours(1)).ShareSeconds, 6);
        Assert.Equal(25 + 0.5 * 7200, usage.Advance(Now.AddHours(2), 0.5, TimeSpan.FromHours(1)).ShareSeconds, 6);
        Assert.Equal(100, usage.Advance(Now.AddHours(-1), 0, TimeSpan.FromHours(1)).ShareSeconds, 6);
    }

    [Fact]
    public void A_quota_lowered_below_what_runs_starts_nothing_until_what_runs_is_within_it_and_kills_nothing()
    {
        var result = Run(Queue(indexes: 4), Job("a/x", "a", parallelism: 10, running: 7), Job("b/y", "b", parallelism: 10, running: 1));

        // Fair: two each. a runs seven (none killed: its backend starts nothing until a is down to two); b runs one
        // and waits for the room a's indexes still hold.
        Assert.Equal((2, 1), (result["a/x"].Allowance, result["b/y"].Allowance));
        Assert.Equal((WaitReasons.QuotaExhausted, 1), (result["b/y"].Reason, result["b/y"].Position));
        Assert.Equal(WaitReasons.TenantOverShare, result["a/x"].Reason);
    }

    [Fact]
    public void A_workload_of_a_missing_queue_or_a_backend_its_queue_does_not_run_waits_and_says_so()
    {
        var result = Run(Queue(), Job("a/lost", "a", parallelism: 2, queue: "gpu", running: 1), Job("a/fargate", "a", parallelism: 2, backend: Backend.AwsBatch));

        Assert.Equal((1, WaitReasons.QueueNotFound), (result["a/lost"].Allowance, result["a/lost"].Reason));
        Assert.Equal("spec.queue: no queue named gpu (queues: default); it is admitted when the queue appears", result["a/lost"].Message);
        Assert.Equal((0, WaitReasons.NoBackendAvailable), (result["a/fargate"].Allowance, result["a/fargate"].Reason));
        Assert.Equal("queue default runs on kubernetes, local; spec.backend is aws-batch", result["a/fargate"].Message);
    }

    [Fact]
    public void A_named_priority_ranks_by_its_queue_s_class_and_an_unknown_class_or_a_namespace_the_queue_refuses_waits_saying_so()
    {
        var queue = Queue(indexes: 2) with { Namespaces = new HashSet<string>(["a"]) };

        var decided = Run(queue,
            Job("a/first", "a", parallelism: 2, sequence: 1),
            Job("a/urgent", "a", parallelism: 2, sequence: 2) with { PriorityClass = "high" },
            Job("a/typo", "a", parallelism: 2, sequence: 3) with { PriorityClass = "hihg" },
            Job("b/outsider", "b", parallelism: 2, sequence: 4));

        Assert.Equal((2, false), (decided["a/urgent"].Allowance, decided["a/urgent"].IsWaiting));
        // The earlier arrival of priority 0 waits: the high one took the whole quota first.
        Assert.Equal((0, WaitReasons.QuotaExhausted, 1), (decided["a/first"].Allowance, decided["a/first"].Reason, decided["a/first"].Position));
        Assert.Equal((0, WaitReasons.PriorityClassNotFound), (decided["a/typo"].Allowance, decided["a/typo"].Reason));
        Assert.StartsWith("spec.priority: queue default has no priority class hihg (classes: high, low, normal)", decided["a/typo"].Message, StringComparison.Ordinal);
        Assert.Equal((0, WaitReasons.NamespaceNotAllowed), (decided["b/outsider"].Allowance, decided["b/outsider"].Reason));
        Assert.StartsWith("spec.queue: queue default takes BatchJobs of namespaces a, not b", decided["b/outsider"].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Room_a_lowered_allowance_frees_is_given_away_only_once_its_backend_applied_it()
    {
        // a's backend still runs it at 10 though 6 run: b gets nothing yet, or the quota would be passed when a's Job
        // starts its next indexes before it hears of the lower allowance.
        var before = Run(Queue(indexes: 10),
            Job("a/large", "a", parallelism: 100, running: 6, sequence: 1) with { AppliedAllowance = 10 },
            Job("b/small", "b", parallelism: 10, remaining: 10, sequence: 2));
        Assert.Equal((5, 0), (before["a/large"].Allowance, before["b/small"].Allowance));
        Assert.Equal(WaitReasons.QuotaExhausted, before["b/small"].Reason);

        // Applied: the four go to b.
        var after = Run(Queue(indexes: 10),
            Job("a/large", "a", parallelism: 100, running: 6, sequence: 1) with { AppliedAllowance = 6 },
            Job("b/small", "b", parallelism: 10, remaining: 10, sequence: 2));
        Assert.Equal((5, 4), (after["a/large"].Allowance, after["b/small"].Allowance));

        // Alone, a takes back the room it holds.
        var alone = Run(Queue(indexes: 10), Job("a/large", "a", parallelism: 100, running: 6, sequence: 1) with { AppliedAllowance = 10 });
        Assert.Equal(10, alone["a/large"].Allowance);
    }

    [Fact]
    public void A_queue_delegating_to_kueue_holds_back_nothing_of_its_kubernetes_work_and_still_schedules_its_local_work()
    {
        var queue = Queue(indexes: 2) with { KueueLocalQueue = "research" };

        var decided = Run(queue, Job("a/cluster", "a", parallelism: 8, sequence: 1), Job("a/laptop", "a", parallelism: 8, sequence: 2, backend: Backend.Local));

        Assert.Equal((8, false, "research"), (decided["a/cluster"].Allowance, decided["a/cluster"].IsWaiting, decided["a/cluster"].DelegatedTo));
        Assert.Null(decided["a/laptop"].DelegatedTo);
        Assert.Equal(8, decided["a/laptop"].Allowance);
    }

    [Fact]
    public void The_same_state_gives_the_same_decisions_whatever_order_it_is_read_in()
    {
        Workload[] workloads =
        [
            Job("a/x", "a", parallelism: 7, running: 2, sequence: 3), Job("b/y", "b", parallelism: 9, priority: 5, sequence: 1),
            Job("c/z", "c", parallelism: 3, sequence: 2), Job("b/w", "b", parallelism: 4, sequence: 4),
        ];

        var once = FairShareScheduler.Schedule([Queue(indexes: 11)], workloads, []);
        var again = FairShareScheduler.Schedule([Queue(indexes: 11)], workloads.Reverse().ToArray(), []);

        Assert.Equal(once.OrderBy(a => a.Key, StringComparer.Ordinal), again.OrderBy(a => a.Key, StringComparer.Ordinal));
        Assert.Equal(11, once.Sum(a => a.Allowance));
    }

    [Fact]
    public void A_tenant_arriving_in_a_full_queue_is_first_in_line()
    {
        var result = Run(Queue(indexes: 4),
            Job("a/x", "a", parallelism: 10, running: 2, sequence: 1), Job("b/y", "b", parallelism: 10, running: 2, sequence: 2),
            Job("c/new", "c", parallelism: 10, sequence: 3));

        Assert.Equal((1, WaitReasons.QuotaExhausted), (result["c/new"].Position, result["c/new"].Reason));
        Assert.Equal(WaitReasons.TenantOverShare, result["a/x"].Reason);
    }
}
