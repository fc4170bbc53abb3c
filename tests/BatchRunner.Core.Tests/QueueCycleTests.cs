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
}
