using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using Xunit;

namespace BatchRunner.Core.Tests;

/// <summary>A scheduling cycle over time: usage brought up to now, standings with estimates, queue summaries.</summary>
public sealed class QueueCycleTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);

    private static readonly QueueDefinition Research = new("research", [Backend.Kubernetes],
        new Dictionary<Backend, Quota> { [Backend.Kubernetes] = new(10, long.MaxValue, long.MaxValue) }, new Dictionary<string, double>(), 1, TimeSpan.FromMinutes(10));

    private static QueuedWorkload Job(string key, int parallelism, int remaining, int running, long sequence, RuntimeSummary? runtimes = null, string queue = "research") =>
        new(new Workload(key, key.Split('/')[0], queue, Backend.Kubernetes, 0, sequence, parallelism, remaining, running, 0, 0), runtimes);

    [Fact]
    public void A_waiting_sweep_gets_its_place_why_and_when_it_should_start_and_finish()
    {
        // a holds the whole quota with 60 s indexes (P90 90 s); b's 10 indexes wait behind them.
        var result = QueueCycle.Run([Research],
            [Job("a/large", 100, 1000, 10, 1, new RuntimeSummary(50, 60, 90)), Job("b/small", 10, 10, 0, 2)], [], Start);

        var b = result.Standings["b/small"];
        Assert.Equal((0, 10, WaitReasons.QuotaExhausted, 1), (b.Allowance, b.Wanted, b.Reason, b.Position));
        // Nothing ahead of b: its first index starts when one slot of ten frees, 1/10 of a runtime; it runs at up to ten at once.
        Assert.Equal(Start.AddSeconds(6), b.StartP50);
        Assert.Equal(Start.AddSeconds(9), b.StartP90);
        Assert.Equal(Start.AddSeconds(66), b.FinishP50);
        Assert.Equal(Start.AddSeconds(99), b.FinishP90);

        // a runs ten and may start none until it is down to its fair five.
        var a = result.Standings["a/large"];
        Assert.Equal((5, WaitReasons.TenantOverShare, 2), (a.Allowance, a.Reason, a.Position));
        Assert.Equal(Start, a.StartP50);
    }

    [Fact]
    public void Without_any_runtime_seen_in_its_pool_there_is_no_estimate_and_a_queue_that_is_missing_gives_none()
    {
        var result = QueueCycle.Run([Research], [Job("a/new", 4, 4, 0, 1), Job("b/lost", 4, 4, 0, 2, new RuntimeSummary(3, 10, 10), queue: "nowhere")], [], Start);

        Assert.Null(result.Standings["a/new"].StartP50);
        Assert.Equal(WaitReasons.QueueNotFound, result.Standings["b/lost"].Reason);
        Assert.Null(result.Standings["b/lost"].FinishP90);
    }

    [Fact]
    public void Usage_accrues_with_the_share_held_and_decays_with_the_half_life_across_cycles()
    {
        var holding = QueueCycle.Run([Research], [Job("a/large", 10, 1000, 5, 1)], [], Start);
        var later = QueueCycle.Run([Research], [Job("a/large", 10, 1000, 5, 1)], holding.Usage, Start.AddMinutes(10));
        var idle = QueueCycle.Run([Research], [], later.Usage, Start.AddMinutes(20));

        var usage = Assert.Single(later.Usage);
        Assert.Equal(("research", "a"), (usage.Queue, usage.Tenant));
        Assert.Equal(0.5 * 600, usage.ShareSeconds, precision: 6);
        // Ten idle minutes later (one half-life) half of it is left.
        Assert.Equal(150, Assert.Single(idle.Usage).ShareSeconds, precision: 6);
    }

    [Fact]
    public void The_queue_summary_counts_pending_and_admitted_indexes_and_each_tenant_s_share()
    {
        var result = QueueCycle.Run([Research], [Job("a/large", 100, 1000, 6, 1), Job("b/small", 10, 10, 0, 2)], [], Start);

        var summary = Assert.Single(result.Queues);
        // Fair: five each; a runs six (one over), so b gets the four indexes free now.
        Assert.Equal((5 + 4, 95 + 6, 2), (summary.AdmittedIndexes, summary.PendingIndexes, summary.WaitingBatchJobs));
        Assert.Equal(["a", "b"], summary.Tenants.Select(t => t.Name));
        Assert.Equal((5, 95), (summary.Tenants[0].AdmittedIndexes, summary.Tenants[0].PendingIndexes));
        Assert.Equal("a 60%, b 0%", summary.Usage);
    }

    [Fact]
    public void The_same_state_and_time_give_the_same_cycle()
    {
        QueuedWorkload[] state = [Job("a/large", 100, 1000, 6, 1, new RuntimeSummary(5, 30, 40)), Job("b/small", 10, 10, 2, 2), Job("c/mid", 20, 50, 0, 3)];
        var usage = new[] { new TenantUsage("research", "a", 1200, Start.AddMinutes(-5)) };

        var once = QueueCycle.Run([Research], state, usage, Start);
        var again = QueueCycle.Run([Research], [.. state.Reverse()], usage, Start);

        Assert.Equal(once.Standings.OrderBy(s => s.Key).Select(s => s.Value), again.Standings.OrderBy(s => s.Key).Select(s => s.Value));
        Assert.Equal(once.Usage, again.Usage);
    }

    private static QueueDefinition Bursting(double afterSeconds, int kubernetesIndexes = 2, int awsIndexes = 100) => new("burst", [Backend.Kubernetes, Backend.AwsBatch],
        new Dictionary<Backend, Quota> { [Backend.Kubernetes] = new(kubernetesIndexes, long.MaxValue, long.MaxValue), [Backend.AwsBatch] = new(awsIndexes, long.MaxValue, long.MaxValue) },
        new Dictionary<string, double>(), 1, TimeSpan.FromMinutes(10)) { Overflow = new OverflowRule(TimeSpan.FromSeconds(afterSeconds)) };

    private static QueuedWorkload Sweep(string key, int parallelism, int remaining, long sequence, RuntimeSummary? runtimes = null, bool undispatched = true, int running = 0) =>
        new(new Workload(key, key.Split('/')[0], "burst", Backend.Kubernetes, 0, sequence, parallelism, remaining, running, 0, 0), runtimes, undispatched);

    [Fact]
    public void A_sweep_held_back_by_a_full_quota_overflows_at_once_with_a_rule_of_zero_keeping_the_indexes_it_runs_in_proportion()
    {
        // Two of its four at once fit the quota: half its indexes stay, the other half go to AWS Batch two at a time.
        var standing = QueueCycle.Run([Bursting(0)], [Sweep("a/sweep", 4, 8, 1)], [], Start).Standings["a/sweep"];

        Assert.Equal(new OverflowPlan(Backend.AwsBatch, 4, 2, 2, 2, "queue burst admits 2 of 4 indexes on kubernetes (QuotaExhausted), and overflows at once"), standing.Overflow);
    }

    [Fact]
    public void A_sweep_admitted_nothing_overflows_whole_once_its_start_estimate_passes_the_rule()
    {
        // a holds both slots with 60 s indexes: b's first index would start in 30 s (one slot of two frees per runtime).
        var running = Sweep("a/holder", 2, 100, 1, new RuntimeSummary(10, 60, 60), undispatched: false, running: 2);
        var soon = QueueCycle.Run([Bursting(45)], [running, Sweep("b/sweep", 4, 10, 2)], [], Start).Standings["b/sweep"];
        var late = QueueCycle.Run([Bursting(20)], [running, Sweep("b/sweep", 4, 10, 2)], [], Start).Standings["b/sweep"];

        Assert.Null(soon.Overflow);
        Assert.Equal((Backend.AwsBatch, 0, 0, 4, 4), (late.Overflow!.To, late.Overflow.Keep, late.Overflow.KeptParallelism, late.Overflow.OverflowParallelism, late.Overflow.Allowance));
        Assert.StartsWith("its next index would wait ~", late.Overflow.Why, StringComparison.Ordinal);
        Assert.Contains("more than queue burst's overflow.afterSeconds (20)", late.Overflow.Why, StringComparison.Ordinal);
        // The part sent away competes in AWS Batch's pool under a key of its own.
        Assert.Equal(4, QueueCycle.Run([Bursting(20)], [running, Sweep("b/sweep", 4, 10, 2)], [], Start).Standings[OverflowPlan.KeyOf("b/sweep", Backend.AwsBatch)].Allowance);
    }

    public static TheoryData<string, QueueDefinition, QueuedWorkload> NoOverflow => new()
    {
        { "admitted in full", Bursting(0, kubernetesIndexes: 10), Sweep("a/sweep", 4, 8, 1) },
        { "already dispatched", Bursting(0), Sweep("a/sweep", 4, 8, 1, undispatched: false) },
        { "no runtime to estimate a wait by", Bursting(60), Sweep("a/sweep", 4, 8, 1) },
        { "its runtime is within the rule", Bursting(60), Sweep("a/sweep", 4, 8, 1, new RuntimeSummary(5, 30, 50)) },
        { "the next backend has no room", Bursting(0, awsIndexes: 0), Sweep("a/sweep", 4, 8, 1) },
        { "no backend after its own", Bursting(0) with { Backends = [Backend.AwsBatch, Backend.Kubernetes] }, Sweep("a/sweep", 4, 8, 1) with { Workload = Sweep("a/sweep", 4, 8, 1).Workload with { Backend = Backend.Kubernetes } } },
        { "the queue has no rule", Bursting(0) with { Overflow = null }, Sweep("a/sweep", 4, 8, 1) },
    };

    [Theory]
    [MemberData(nameof(NoOverflow))]
    public void A_sweep_stays_whole_on_its_backend_when_the_rule_does_not_apply(string why, QueueDefinition queue, QueuedWorkload sweep)
    {
        var result = QueueCycle.Run([queue], [sweep], [], Start);

        Assert.True(result.Standings["a/sweep"].Overflow is null, why);
        Assert.Single(result.Standings);
    }

    [Fact]
    public void A_sweep_past_its_rule_overflows_when_its_runtime_passes_it_and_the_parts_keep_its_parallelism()
    {
        var standing = QueueCycle.Run([Bursting(60)], [Sweep("a/sweep", 10, 100, 1, new RuntimeSummary(5, 120, 150))], [], Start).Standings["a/sweep"];

        Assert.Equal((20, 2, 8), (standing.Overflow!.Keep, standing.Overflow.KeptParallelism, standing.Overflow.OverflowParallelism));
        Assert.Equal(10, standing.Overflow.KeptParallelism + standing.Overflow.OverflowParallelism);
    }
}
