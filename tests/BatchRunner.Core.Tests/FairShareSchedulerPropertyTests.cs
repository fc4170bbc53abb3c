using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using CsCheck;
using Xunit;

namespace BatchRunner.Core.Tests;

/// <summary>What holds for any state the scheduler is given: nothing over quota with what runs, no room left idle, no order dependence.</summary>
public sealed class FairShareSchedulerPropertyTests
{
    private static readonly Gen<Workload> AnyWorkload =
        Gen.Select(Gen.Int[0, 3], Gen.Int[0, 3], Gen.Int[1, 30], Gen.Int[0, 60], Gen.Int[0, 12], Gen.Int[1, 4], Gen.Int[0, 3], Gen.Bool)
            .Select((tenant, priority, parallelism, remaining, running, cpu, memory, onQueue) => new Workload(
                "", "t" + tenant, onQueue ? "q" : "other", Backend.Kubernetes, priority, 0, parallelism, remaining, Math.Min(running, remaining), cpu * 500L, memory * (1L << 29)));

    private static readonly Gen<(QueueDefinition Queue, Workload[] Workloads)> AnyState =
        Gen.Select(Gen.Int[0, 40], Gen.Int[1, 20], Gen.Int[1, 16], Gen.Double[0.25, 4], Gen.Double[0.25, 4], AnyWorkload.Array[0, 12])
            .Select((indexes, cpus, gigabytes, weightA, weightB, workloads) => (
                new QueueDefinition("q", [Backend.Kubernetes], new Dictionary<Backend, Quota> { [Backend.Kubernetes] = new(indexes, cpus * 1000L, gigabytes * (1L << 30)) },
                    new Dictionary<string, double> { ["t0"] = weightA, ["t1"] = weightB }, 1, TimeSpan.FromHours(1)),
                workloads.Select((w, i) => w with { Key = $"{w.Tenant}/j{i}", Sequence = i }).ToArray()));

    [Fact]
    public void Every_decision_stays_within_what_is_wanted_and_with_what_runs_adds_only_what_fits_the_quota()
    {
        AnyState.Sample(state =>
        {
            var (queue, workloads) = state;
            var decided = FairShareScheduler.Schedule([queue], workloads, []).ToDictionary(a => a.Key);
            Assert.Equal(workloads.Length, decided.Count);
            foreach (var w in workloads)
            {
                Assert.InRange(decided[w.Key].Allowance, 0, w.Wanted);
            }

            // What may run once the decision is applied: the most of what runs (nothing is killed) and the allowance.
            var pool = workloads.Where(w => w.Queue == "q").ToList();
            var quota = queue.QuotaOf(Backend.Kubernetes);
            long MayRun(Workload w) => Math.Max(w.Running, decided[w.Key].Allowance);
            Within(pool.Sum(w => (long)w.Running), pool.Sum(MayRun), quota.Indexes);
            Within(pool.Sum(w => w.Running * w.MilliCpuPerIndex), pool.Sum(w => MayRun(w) * w.MilliCpuPerIndex), quota.MilliCpu);
            Within(pool.Sum(w => w.Running * w.MemoryBytesPerIndex), pool.Sum(w => MayRun(w) * w.MemoryBytesPerIndex), quota.MemoryBytes);

            // No room is left idle for the head of the line: the first waiting workload that would start its next
            // index (it is not over its share of what runs already) waits because that index does not fit. Room it
            // cannot use is kept for it rather than given to those behind it, so a large index is not starved by
            // small ones taking every index that frees.
            var room = (Indexes: quota.Indexes - pool.Sum(MayRun),
                Cpu: quota.MilliCpu - pool.Sum(w => MayRun(w) * w.MilliCpuPerIndex),
                Memory: quota.MemoryBytes - pool.Sum(w => MayRun(w) * w.MemoryBytesPerIndex));
            foreach (var w in pool.Where(w => decided[w.Key].Reason is WaitReasons.QuotaExhausted or WaitReasons.TenantOverShare && decided[w.Key].Allowance >= w.Running)
                .OrderBy(w => decided[w.Key].Position).Take(1))
            {
                Assert.True(room.Indexes < 1 || room.Cpu < w.MilliCpuPerIndex || room.Memory < w.MemoryBytesPerIndex,
                    $"{w.Key} waits ({decided[w.Key].Reason}) with room for another index: {room}");
            }

            // Positions are 1..n over the waiting workloads of the pool.
            var positions = pool.Select(w => decided[w.Key].Position).OfType<int>().Order().ToList();
            Assert.Equal(Enumerable.Range(1, positions.Count), positions);
        }, iter: 500, threads: 1);

        static void Within(long running, long allowed, long quota) => Assert.True(allowed <= Math.Max(running, quota), $"{allowed} allowed, {running} running, quota {quota}");
    }

    [Fact]
    public void While_lowered_allowances_are_on_their_way_what_backends_may_run_together_never_passes_the_quota()
    {
        Gen.Select(AnyState, Gen.Int[0, 12].Array[12]).Sample((state, applied) =>
        {
            var (queue, workloads) = state;
            workloads = workloads.Select((w, i) => w with { AppliedAllowance = applied[i] }).ToArray();
            var decided = FairShareScheduler.Schedule([queue], workloads, []).ToDictionary(a => a.Key);

            // A backend runs the most of its old and its new allowance until it applied the new one.
            var pool = workloads.Where(w => w.Queue == "q").ToList();
            var quota = queue.QuotaOf(Backend.Kubernetes).Indexes;
            long held = pool.Sum(w => w.Held), mayRun = pool.Sum(w => Math.Max(w.Held, decided[w.Key].Allowance));
            Assert.True(mayRun <= Math.Max(held, quota), $"{mayRun} may run with {held} held, quota {quota}");
            foreach (var w in workloads)
            {
                Assert.InRange(decided[w.Key].Allowance, 0, w.Wanted);
            }
        }, iter: 500, threads: 1);
    }

    [Fact]
    public void The_decisions_do_not_depend_on_the_order_the_state_was_read_in()
    {
        AnyState.Sample(state =>
        {
            var once = FairShareScheduler.Schedule([state.Queue], state.Workloads, []).OrderBy(a => a.Key, StringComparer.Ordinal).ToList();
            var reversed = FairShareScheduler.Schedule([state.Queue], state.Workloads.Reverse().ToArray(), []).OrderBy(a => a.Key, StringComparer.Ordinal).ToList();
            Assert.Equal(once, reversed);
        }, iter: 300, threads: 1);
    }

    [Fact]
    public void Equal_tenants_wanting_more_than_the_queue_holds_share_it_evenly()
    {
        Gen.Select(Gen.Int[2, 8], Gen.Int[1, 200]).Sample((tenants, indexes) =>
        {
            var queue = new QueueDefinition("q", [Backend.Kubernetes], new Dictionary<Backend, Quota> { [Backend.Kubernetes] = new(indexes, long.MaxValue, long.MaxValue) },
                new Dictionary<string, double>(), 1, TimeSpan.FromHours(1));
            var workloads = Enumerable.Range(0, tenants).Select(t => new Workload($"t{t}/w", $"t{t}", "q", Backend.Kubernetes, 0, t, 1000, 10_000, 0, 1000, 1L << 30)).ToArray();

            var allowances = FairShareScheduler.Schedule([queue], workloads, []).Select(a => (double)a.Allowance).ToList();

            Assert.Equal(indexes, allowances.Sum());
            Assert.True(allowances.Max() - allowances.Min() <= 1, string.Join(",", allowances));
        }, iter: 200, threads: 1);
    }
}
