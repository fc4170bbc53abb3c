using System.Globalization;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Scheduling;

/// <summary>A BatchJob waiting in or running through a queue, with what is known of its indexes' runtimes.</summary>
/// <param name="Runtimes">Runtimes of its indexes seen so far (this run's and its earlier runs'); null before any finished.</param>
/// <param name="MayOverflow">
/// Nothing of its run went to a backend yet, so its queue's overflow rule may still send some of its indexes to the
/// next backend (once dispatched, an index never moves).
/// </param>
public sealed record QueuedWorkload(Workload Workload, RuntimeSummary? Runtimes, bool MayOverflow = false);

/// <summary>
/// Its queue's overflow rule applies: the lowest <paramref name="Keep"/> of its indexes stay on its backend, run at
/// most <paramref name="KeptParallelism"/> at once (what that backend admitted), and the rest go to
/// <paramref name="To"/> at most <paramref name="OverflowParallelism"/> at once, so the run as a whole keeps its
/// parallelism and both parts finish about together. <paramref name="Allowance"/> is what <paramref name="To"/>
/// admits of them now (always some: a backend with no room takes no overflow).
/// </summary>
public sealed record OverflowPlan(Backend To, int Keep, int KeptParallelism, int OverflowParallelism, int Allowance, string Why)
{
    /// <summary>The key the scheduler knows the part of a BatchJob on another backend by.</summary>
    public static string KeyOf(string key, Backend backend) => $"{key}#{backend.Name}";

    /// <summary>The BatchJob a key belongs to: itself, or the owner of a part on another backend.</summary>
    public static string OwnerOf(string key) => key.IndexOf('#', StringComparison.Ordinal) is var at and >= 0 ? key[..at] : key;
}

/// <summary>
/// Where one BatchJob stands after a cycle: how many indexes it may run at once, and, when some wait, why, its place
/// in line and when it should start and finish (absolute times; null without any runtime to go by).
/// </summary>
public sealed record Standing(
    string Key,
    string Queue,
    int Allowance,
    int Wanted,
    string? Reason,
    string? Message,
    int? Position,
    DateTimeOffset? StartP50,
    DateTimeOffset? StartP90,
    DateTimeOffset? FinishP50,
    DateTimeOffset? FinishP90)
{
    /// <summary>The Kueue LocalQueue that admits it instead of BatchRunner, when its queue delegates.</summary>
    public string? DelegatedTo { get; init; }

    /// <summary>Send its waiting indexes to another backend (decided only for a run not dispatched yet).</summary>
    public OverflowPlan? Overflow { get; init; }

    public bool IsWaiting => Reason is not null;
}

/// <summary>A tenant's standing in a queue: its weight, the share it holds now and its decayed past usage.</summary>
public sealed record TenantStanding(string Name, double Weight, double Share, TenantUsage Usage, int AdmittedIndexes, int PendingIndexes);

/// <summary>A queue after a cycle, for its status and for <c>batchrunner queue</c>.</summary>
public sealed record QueueSummary(
    string Name, IReadOnlyList<Backend> Backends, int PendingIndexes, int AdmittedIndexes, int WaitingBatchJobs, IReadOnlyList<TenantStanding> Tenants)
{
    /// <summary>Each tenant's share in use, as <c>kubectl get queues</c> shows it: <c>team-a 60%, team-b 40%</c>.</summary>
    public string Usage => Tenants.Count == 0 ? "" : string.Join(", ", Tenants.Where(t => t.AdmittedIndexes > 0 || t.PendingIndexes > 0)
        .Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Name} {t.Share * 100:0}%")));
}

/// <summary>What one cycle decided: every BatchJob's standing, every queue's summary, every tenant's usage as of now.</summary>
public sealed record CycleResult(IReadOnlyDictionary<string, Standing> Standings, IReadOnlyList<QueueSummary> Queues, IReadOnlyList<TenantUsage> Usage);

/// <summary>
/// One scheduling cycle as a pure function of state and the time: tenants' past usage is brought up to
/// <c>now</c> (decayed, plus the share each held since), the <see cref="FairShareScheduler"/> decides, and every
/// waiting BatchJob gets its estimate. Hosts run it in a loop over what they read (the cluster, the local store);
/// the same state and time give the same result, so a new leader carries on where the last one stood.
/// </summary>
public static class QueueCycle
{
    /// <summary>Usage this small with no work in the queue is forgotten.</summary>
    private const double ForgottenShareSeconds = 1e-3;

    /// <param name="refused">Queues given that did not read, with their errors: a BatchJob naming one is told why, not that it is missing.</param>
    public static CycleResult Run(
        IReadOnlyList<QueueDefinition> queues, IReadOnlyList<QueuedWorkload> queued, IReadOnlyList<TenantUsage> usage, DateTimeOffset now,
        IReadOnlyDictionary<string, string>? refused = null)
    {
        var byName = queues.ToDictionary(q => q.Name, StringComparer.Ordinal);
        var decision = Decide(queued);

        // Overflow: a run not dispatched yet whose next index waits too long sends its waiting indexes to the next
        // backend. Its part there competes in that backend's pool like any workload, so the queue decides again with
        // it; a backend with no room for a part takes no overflow (that run waits where it is), and the queue decides
        // once more without those (a part admitted nothing took no room, so the others only gain).
        var plans = Overflows(byName, queued, decision.Standings, now);
        while (plans.Count > 0)
        {
            var split = Decide([.. queued, .. plans.Select(p => new QueuedWorkload(p.Part, queued.First(q => q.Workload.Key == p.Key).Runtimes))]);
            var roomless = plans.Where(p => split.Standings[p.Part.Key].Allowance == 0).ToList();
            if (roomless.Count == 0)
            {
                foreach (var (key, part, to, keep, kept, why) in plans)
                {
                    split.Standings[key] = split.Standings[key] with { Overflow = new OverflowPlan(to, keep, kept, part.Parallelism, split.Standings[part.Key].Allowance, why) };
                }

                decision = split;
                break;
            }

            plans = [.. plans.Except(roomless)];
        }

        var (workloads, advanced, admissions, standings) = decision;
        var decided = admissions.ToDictionary(a => a.Key, StringComparer.Ordinal);
        var summaries = queues.OrderBy(q => q.Name, StringComparer.Ordinal).Select(q => Summarize(q, workloads, decided, advanced)).ToList();
        return new CycleResult(standings, summaries, advanced);

        (List<Workload> Workloads, List<TenantUsage> Advanced, IReadOnlyList<Admission> Admissions, Dictionary<string, Standing> Standings) Decide(IReadOnlyList<QueuedWorkload> members)
        {
            var all = members.Select(q => q.Workload).ToList();
            var brought = AdvanceUsage(byName, all, usage, now);
            var admitted = FairShareScheduler.Schedule(queues, all, brought);
            return (all, brought, admitted, Standings(byName, members, admitted, now, refused));
        }
    }

    /// <summary>Every workload's standing: its admission, with estimates from its own runtimes or its pool's.</summary>
    private static Dictionary<string, Standing> Standings(
        Dictionary<string, QueueDefinition> byName, IReadOnlyList<QueuedWorkload> queued, IReadOnlyList<Admission> admissions, DateTimeOffset now,
        IReadOnlyDictionary<string, string>? refused)
    {
        var decided = admissions.ToDictionary(a => a.Key, StringComparer.Ordinal);
        var ahead = EtaEstimator.IndexesAhead(admissions, [.. queued.Select(q => q.Workload)]);
        var standings = new Dictionary<string, Standing>(StringComparer.Ordinal);
        foreach (var pool in queued.GroupBy(q => (q.Workload.Queue, q.Workload.Backend)))
        {
            var members = pool.ToList();
            var queue = byName.GetValueOrDefault(pool.Key.Queue);
            var quota = queue?.QuotaOf(pool.Key.Backend) ?? Quota.Unlimited;
            var admittedInPool = members.Sum(m => decided[m.Workload.Key].Allowance);
            var slots = quota.Indexes != int.MaxValue ? quota.Indexes : Math.Max(1, admittedInPool);
            // Without runtimes of its own, a BatchJob goes by those of the others in its pool.
            var history = members.Aggregate((RuntimeSummary?)null, (sum, m) => RuntimeSummary.Merge(sum, m.Runtimes));
            foreach (var member in members)
            {
                var workload = member.Workload;
                var admission = decided[workload.Key];
                var eta = queue is null || admission.Reason is WaitReasons.QueueNotFound or WaitReasons.NoBackendAvailable or WaitReasons.NamespaceNotAllowed or WaitReasons.PriorityClassNotFound
                    ? null
                    : (member.Runtimes ?? history) is { } runtimes
                        ? EtaEstimator.Estimate(runtimes, workload.Remaining, admission.Allowance, ahead.GetValueOrDefault(workload.Key), slots,
                            Math.Max(1, Math.Min(workload.Parallelism, slots)))
                        : null;
                var message = admission.Reason == WaitReasons.QueueNotFound && refused?.GetValueOrDefault(workload.Queue) is { } errors
                    ? $"spec.queue: queue {workload.Queue} is refused ({errors}); it is admitted once the queue is fixed"
                    : admission.Message;
                standings[workload.Key] = new Standing(workload.Key, workload.Queue, admission.Allowance, workload.Wanted, admission.Reason, message, admission.Position,
                    now + eta?.StartP50, now + eta?.StartP90, now + eta?.FinishP50, now + eta?.FinishP90) { DelegatedTo = admission.DelegatedTo };
            }
        }

        return standings;
    }

    /// <summary>
    /// The runs its queue's overflow rule moves in part: not dispatched yet, held back by the queue (not by their own
    /// spec), with a next backend, and a wait for their next index past the rule's (at once with a rule of 0). The
    /// wait is the start estimate for a run admitted nothing, else a typical runtime (its next index waits for one of
    /// its own to finish); without runtimes to go by, only a rule of 0 moves anything.
    /// </summary>
    private static List<(string Key, Workload Part, Backend To, int Keep, int Kept, string Why)> Overflows(
        Dictionary<string, QueueDefinition> byName, IReadOnlyList<QueuedWorkload> queued, Dictionary<string, Standing> standings, DateTimeOffset now)
    {
        var plans = new List<(string, Workload, Backend, int, int, string)>();
        foreach (var member in queued.Where(q => q.MayOverflow))
        {
            var workload = member.Workload;
            var standing = standings[workload.Key];
            if (byName.GetValueOrDefault(workload.Queue) is not { Overflow: { } rule } queue || queue.OverflowAfter(workload.Backend) is not { } to
                || standing.Reason is not (WaitReasons.QuotaExhausted or WaitReasons.TenantOverShare or WaitReasons.BehindHigherPriority)
                || standing.Allowance >= workload.Wanted || workload.Remaining <= 0)
            {
                continue;
            }

            TimeSpan? wait = standing.Allowance == 0
                ? standing.StartP50 is { } start ? start - now : null
                : member.Runtimes is { } runtimes ? TimeSpan.FromSeconds(runtimes.P50Seconds) : null;
            if (rule.After > TimeSpan.Zero && (wait is null || wait <= rule.After))
            {
                continue;
            }

            var kept = standing.Allowance;
            var keep = (int)Math.Ceiling((double)workload.Remaining * kept / workload.Wanted);
            var why = rule.After == TimeSpan.Zero
                ? $"queue {workload.Queue} admits {kept} of {workload.Wanted} indexes on {workload.Backend.Name} ({standing.Reason}), and overflows at once"
                : $"its next index would wait ~{DurationText(wait!.Value)} on {workload.Backend.Name} ({standing.Reason}), more than queue {workload.Queue}'s overflow.afterSeconds ({rule.After.TotalSeconds.ToString(CultureInfo.InvariantCulture)})";
            var part = workload with
            {
                Key = OverflowPlan.KeyOf(workload.Key, to),
                Backend = to,
                Parallelism = workload.Wanted - kept,
                Remaining = workload.Remaining - keep,
                Running = 0,
                AppliedAllowance = 0,
            };
            plans.Add((workload.Key, part, to, keep, kept, why));
        }

        return plans;

        static string DurationText(TimeSpan span) => span.TotalSeconds < 90
            ? string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0}s")
            : string.Create(CultureInfo.InvariantCulture, $"{span.TotalMinutes:0}m");
    }

    /// <summary>Each tenant's usage of each queue as of <paramref name="now"/>; tenants long idle are forgotten.</summary>
    private static List<TenantUsage> AdvanceUsage(Dictionary<string, QueueDefinition> queues, List<Workload> workloads, IReadOnlyList<TenantUsage> usage, DateTimeOffset now)
    {
        var past = usage.Where(u => queues.ContainsKey(u.Queue)).ToDictionary(u => (u.Queue, u.Tenant));
        var tenants = workloads.Where(w => queues.ContainsKey(w.Queue)).Select(w => (w.Queue, w.Tenant)).Concat(past.Keys).Distinct().Order().ToList();
        var advanced = new List<TenantUsage>(tenants.Count);
        foreach (var (queueName, tenant) in tenants)
        {
            var queue = queues[queueName];
            var before = past.GetValueOrDefault((queueName, tenant)) ?? new TenantUsage(queueName, tenant, 0, now);
            var after = before.Advance(now, ShareHeld(queue, tenant, workloads), queue.UsageHalfLife);
            if (after.ShareSeconds >= ForgottenShareSeconds || workloads.Any(w => w.Queue == queueName && w.Tenant == tenant))
            {
                advanced.Add(after);
            }
        }

        return advanced;
    }

    /// <summary>The dominant share a tenant holds of a queue now: its largest fraction of any quota, over the queue's backends.</summary>
    public static double ShareHeld(QueueDefinition queue, string tenant, IEnumerable<Workload> workloads)
    {
        var share = 0.0;
        foreach (var pool in workloads.Where(w => w.Queue == queue.Name && w.Tenant == tenant).GroupBy(w => w.Backend))
        {
            var quota = queue.QuotaOf(pool.Key);
            share = Math.Max(share, Math.Max(Fraction(pool.Sum(w => (long)w.Running), quota.Indexes),
                Math.Max(Fraction(pool.Sum(w => w.Running * w.MilliCpuPerIndex), quota.MilliCpu), Fraction(pool.Sum(w => w.Running * w.MemoryBytesPerIndex), quota.MemoryBytes))));
        }

        return share;

        static double Fraction(long used, long quota) => quota is int.MaxValue or long.MaxValue || quota <= 0 ? 0 : (double)used / quota;
    }

    private static QueueSummary Summarize(QueueDefinition queue, List<Workload> workloads, Dictionary<string, Admission> decided, List<TenantUsage> usage)
    {
        var members = workloads.Where(w => w.Queue == queue.Name).ToList();
        int Pending(IEnumerable<Workload> of) => of.Sum(w => Math.Max(0, w.Wanted - decided[w.Key].Allowance));
        var tenants = usage.Where(u => u.Queue == queue.Name).Select(u =>
        {
            var own = members.Where(w => w.Tenant == u.Tenant).ToList();
            return new TenantStanding(u.Tenant, queue.WeightOf(u.Tenant), ShareHeld(queue, u.Tenant, own), u,
                own.Sum(w => decided[w.Key].Allowance), Pending(own));
        }).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        return new QueueSummary(queue.Name, queue.Backends, Pending(members), members.Sum(w => decided[w.Key].Allowance),
            members.Count(w => decided[w.Key].IsWaiting), tenants);
    }
}
