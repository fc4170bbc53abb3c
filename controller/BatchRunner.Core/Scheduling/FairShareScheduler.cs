using System.Globalization;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Scheduling;

/// <summary>
/// Decides how many indexes each BatchJob may run at once, as a pure function of the queues, the workloads and the
/// tenants' past usage: the same state always gives the same answer, so a new leader decides as the last one did.
/// <para>
/// Within each queue and backend (a pool with the queue's quota for that backend), indexes are granted by progressive
/// filling over tenants in order of weighted dominant share (dominant resource fairness: a tenant's share is the
/// largest of its fractions of the quota's indexes, cpu and memory, plus its decayed past share, over its weight),
/// and within a tenant by priority, then arrival. The fair answer is decided on demand alone; what runs still holds
/// its room, so each workload is then granted its answer from the room it holds first and from the room truly free
/// after, and nothing passes the quota. An allowance below what runs kills nothing: backends only stop starting
/// indexes, so a tenant over its share is brought back as its indexes finish. A tenant without demand takes
/// nothing, so its share is lent to whoever waits. Every workload left waiting is told why and its place in line.
/// </para>
/// </summary>
public static class FairShareScheduler
{
    public static IReadOnlyList<Admission> Schedule(IReadOnlyList<QueueDefinition> queues, IReadOnlyList<Workload> workloads, IReadOnlyList<TenantUsage> usage)
    {
        var byName = queues.ToDictionary(q => q.Name, StringComparer.Ordinal);
        var past = usage.ToDictionary(u => (u.Queue, u.Tenant));
        var admissions = new List<Admission>(workloads.Count);
        var pools = new Dictionary<(string Queue, Backend Backend), List<Workload>>();
        foreach (var workload in workloads.OrderBy(w => w.Key, StringComparer.Ordinal))
        {
            if (!byName.TryGetValue(workload.Queue, out var queue))
            {
                admissions.Add(new Admission(workload.Key, workload.Running, WaitReasons.QueueNotFound,
                    $"spec.queue: no queue named {workload.Queue} (queues: {string.Join(", ", queues.Select(q => q.Name).Order(StringComparer.Ordinal))}); it is admitted when the queue appears", null));
            }
            else if (!queue.Backends.Contains(workload.Backend))
            {
                admissions.Add(new Admission(workload.Key, workload.Running, WaitReasons.NoBackendAvailable,
                    $"queue {queue.Name} runs on {string.Join(", ", queue.Backends.Select(b => b.Name))}; spec.backend is {workload.Backend.Name}", null));
            }
            else if (!queue.Admits(workload.Tenant))
            {
                admissions.Add(new Admission(workload.Key, workload.Running, WaitReasons.NamespaceNotAllowed,
                    $"spec.queue: queue {queue.Name} takes BatchJobs of namespaces {string.Join(", ", queue.Namespaces!.Order(StringComparer.Ordinal))}, not {workload.Tenant}", null));
            }
            else if (workload.PriorityClass is { } className && !queue.PriorityClasses.ContainsKey(className))
            {
                admissions.Add(new Admission(workload.Key, workload.Running, WaitReasons.PriorityClassNotFound,
                    $"spec.priority: queue {queue.Name} has no priority class {className} (classes: {string.Join(", ", queue.PriorityClasses.Keys.Order(StringComparer.Ordinal))})", null));
            }
            else if (queue.KueueLocalQueue is { } localQueue && workload.Backend == Backend.Kubernetes)
            {
                // Kueue admits it (its Job is created suspended in the LocalQueue): nothing is held back here.
                admissions.Add(new Admission(workload.Key, workload.Wanted, null,
                    $"admission delegated to Kueue LocalQueue {localQueue} (the Job waits suspended until Kueue admits it)", null) { DelegatedTo = localQueue });
            }
            else
            {
                var pool = (queue.Name, workload.Backend);
                if (!pools.TryGetValue(pool, out var members))
                {
                    pools[pool] = members = [];
                }

                members.Add(workload.PriorityClass is { } named ? workload with { Priority = queue.PriorityClasses[named] } : workload);
            }
        }

        foreach (var ((queueName, backend), members) in pools.OrderBy(p => p.Key.Queue, StringComparer.Ordinal).ThenBy(p => p.Key.Backend.Name, StringComparer.Ordinal))
        {
            admissions.AddRange(new Pool(byName[queueName], backend, members, past).Fill());
        }

        return admissions;
    }

    /// <summary>One queue's quota on one backend, and the workloads that share it.</summary>
    private sealed class Pool
    {
        private readonly QueueDefinition _queue;
        private readonly Backend _backend;
        private readonly Quota _quota;
        private readonly Dictionary<string, Tenant> _tenants = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _allowance = new(StringComparer.Ordinal);
        private readonly List<(Workload Workload, int Count)> _grants = [];

        // The fair answer (before room held by running indexes is accounted), and for workloads whose fair grant did
        // not fit the room truly free, the order in which they are served as room frees.
        private readonly Dictionary<string, int> _fair = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _cutRank = new(StringComparer.Ordinal);
        private long _indexes;
        private long _milliCpu;
        private long _memory;

        public Pool(QueueDefinition queue, Backend backend, List<Workload> members, Dictionary<(string, string), TenantUsage> past)
        {
            _queue = queue;
            _backend = backend;
            _quota = queue.QuotaOf(backend);
            foreach (var workload in members)
            {
                if (!_tenants.TryGetValue(workload.Tenant, out var tenant))
                {
                    var history = past.TryGetValue((queue.Name, workload.Tenant), out var used) ? used.AverageShare(queue.UsageHalfLife) : 0;
                    _tenants[workload.Tenant] = tenant = new Tenant(workload.Tenant, queue.WeightOf(workload.Tenant), history);
                }

                tenant.Workloads.Add(workload);
                _allowance[workload.Key] = 0;
            }

            foreach (var tenant in _tenants.Values)
            {
                // Highest priority first, then first come: the order a tenant's own work is served in.
                tenant.Workloads.Sort((a, b) => b.Priority != a.Priority ? b.Priority.CompareTo(a.Priority)
                    : a.Sequence != b.Sequence ? a.Sequence.CompareTo(b.Sequence)
                    : string.CompareOrdinal(a.Key, b.Key));
            }
        }

        public IEnumerable<Admission> Fill()
        {
            var line = new PriorityQueue<Tenant, (double Share, string Name)>();
            foreach (var tenant in _tenants.Values.Where(t => NextOf(t) is not null))
            {
                line.Enqueue(tenant, (Share(tenant), tenant.Name));
            }

            while (line.TryDequeue(out var tenant, out _))
            {
                var workload = NextOf(tenant)!;
                var fits = Fits(workload);
                if (fits == 0)
                {
                    // Its next index does not fit: it waits for room, and its own lower-ranked work waits behind it.
                    tenant.Blocked = true;
                    continue;
                }

                var wanted = workload.Wanted - _allowance[workload.Key];
                var share = line.TryPeek(out _, out var next) ? UntilShare(tenant, workload, next.Share) : long.MaxValue;
                var granted = (int)Math.Max(1, Math.Min(Math.Min(wanted, fits), share));
                _allowance[workload.Key] += granted;
                _grants.Add((workload, granted));
                tenant.Add(workload, granted);
                (_indexes, _milliCpu, _memory) = (_indexes + granted, _milliCpu + granted * workload.MilliCpuPerIndex, _memory + granted * workload.MemoryBytesPerIndex);
                if (NextOf(tenant) is not null)
                {
                    line.Enqueue(tenant, (Share(tenant), tenant.Name));
                }
            }

            KeepRoomInTransit();
            return Explain();
        }

        /// <summary>
        /// The fair answer counted nothing as held; what runs holds its room, and a backend that still enforces a
        /// higher allowance holds that until it applies the lower one. Grants are made again, in the order they were
        /// decided: each from the room its workload holds first, then from the room truly free, so the quota is never
        /// passed while running indexes finish and lowered allowances are on their way; what did not fit waits.
        /// </summary>
        private void KeepRoomInTransit()
        {
            var members = _tenants.Values.SelectMany(t => t.Workloads).ToList();
            var own = members.ToDictionary(w => w.Key, w => w.Held, StringComparer.Ordinal);
            (_indexes, _milliCpu, _memory) = (0, 0, 0);
            foreach (var workload in members)
            {
                _fair[workload.Key] = _allowance[workload.Key];
                _allowance[workload.Key] = 0;
                (_indexes, _milliCpu, _memory) = (_indexes + workload.Held, _milliCpu + workload.Held * workload.MilliCpuPerIndex, _memory + workload.Held * workload.MemoryBytesPerIndex);
            }

            foreach (var (workload, count) in _grants)
            {
                var fromOwn = Math.Min(count, own[workload.Key]);
                own[workload.Key] -= fromOwn;
                var fresh = (int)Math.Min(count - fromOwn, Fits(workload));
                _allowance[workload.Key] += fromOwn + fresh;
                if (fromOwn + fresh < count)
                {
                    _cutRank.TryAdd(workload.Key, _cutRank.Count);
                }

                (_indexes, _milliCpu, _memory) = (_indexes + fresh, _milliCpu + fresh * workload.MilliCpuPerIndex, _memory + fresh * workload.MemoryBytesPerIndex);
            }
        }

        /// <summary>
        /// The tenant's best-ranked workload that wants more, unless the tenant is blocked. Allowances only grow while the pool fills, so the ones
        /// passed stay served: a cursor, not a scan from the start at every grant (that was quadratic in workloads).
        /// </summary>
        private Workload? NextOf(Tenant tenant)
        {
            if (tenant.Blocked)
            {
                return null;
            }

            while (tenant.Served < tenant.Workloads.Count && _allowance[tenant.Workloads[tenant.Served].Key] >= tenant.Workloads[tenant.Served].Wanted)
            {
                tenant.Served++;
            }

            return tenant.Served < tenant.Workloads.Count ? tenant.Workloads[tenant.Served] : null;
        }

        /// <summary>How many more indexes of the workload fit the pool's quota.</summary>
        private long Fits(Workload workload)
        {
            var byIndexes = _quota.Indexes - _indexes;
            var byCpu = workload.MilliCpuPerIndex == 0 ? long.MaxValue : (_quota.MilliCpu - _milliCpu) / workload.MilliCpuPerIndex;
            var byMemory = workload.MemoryBytesPerIndex == 0 ? long.MaxValue : (_quota.MemoryBytes - _memory) / workload.MemoryBytesPerIndex;
            return Math.Max(0, Math.Min(byIndexes, Math.Min(byCpu, byMemory)));
        }

        /// <summary>How many indexes of the workload the tenant may take before its share passes <paramref name="limit"/>.</summary>
        private long UntilShare(Tenant tenant, Workload workload, double limit)
        {
            var room = limit * tenant.Weight - tenant.History;
            return Math.Min(Steps(room, _quota.Indexes, tenant.Indexes, 1),
                Math.Min(Steps(room, _quota.MilliCpu, tenant.MilliCpu, workload.MilliCpuPerIndex), Steps(room, _quota.MemoryBytes, tenant.Memory, workload.MemoryBytesPerIndex)));

            static long Steps(double room, long quota, long used, long perIndex) =>
                perIndex == 0 || quota is int.MaxValue or long.MaxValue ? long.MaxValue : (long)Math.Floor((room * quota - used) / perIndex);
        }

        /// <summary>A tenant's weighted dominant share: the largest fraction of the quota it holds, plus its past share, over its weight.</summary>
        private double Share(Tenant tenant) => (tenant.History + Dominant(tenant.Indexes, tenant.MilliCpu, tenant.Memory)) / tenant.Weight;

        private double Dominant(long indexes, long milliCpu, long memory) =>
            Math.Max(Fraction(indexes, _quota.Indexes), Math.Max(Fraction(milliCpu, _quota.MilliCpu), Fraction(memory, _quota.MemoryBytes)));

        private static double Fraction(long used, long quota) => quota is int.MaxValue or long.MaxValue || quota <= 0 ? 0 : (double)used / quota;

        /// <summary>The admissions, with a reason and a place in line for every workload left waiting.</summary>
        private IEnumerable<Admission> Explain()
        {
            // Those whose fair share waits for room still held are served first as it frees, in the order decided;
            // then the rest by their tenant's share, and within a tenant by rank.
            var tenantOrder = _tenants.Values.OrderBy(Share).ThenBy(t => t.Name, StringComparer.Ordinal).Select((t, i) => (t.Name, i)).ToDictionary(t => t.Name, t => t.i, StringComparer.Ordinal);
            var waiting = _tenants.Values
                .SelectMany(t => t.Workloads.Select((w, rank) => (Tenant: t, Workload: w, Rank: rank)))
                .Where(x => _allowance[x.Workload.Key] < x.Workload.Wanted)
                .OrderBy(x => _cutRank.GetValueOrDefault(x.Workload.Key, int.MaxValue))
                .ThenBy(x => tenantOrder[x.Tenant.Name]).ThenBy(x => x.Rank)
                .ToList();
            var first = waiting.Select(x => x.Tenant).FirstOrDefault();
            var position = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (tenant, workload, _) in waiting)
            {
                position++;
                var ahead = tenant.Workloads.TakeWhile(w => w != workload).FirstOrDefault(w => _allowance[w.Key] < w.Wanted);
                var (reason, message) = _cutRank.ContainsKey(workload.Key)
                    ? (WaitReasons.QuotaExhausted, QuotaMessage(workload))
                    : ahead is not null
                        ? (WaitReasons.BehindHigherPriority, string.Create(CultureInfo.InvariantCulture,
                            $"behind {ahead.Key} (priority {ahead.Priority}) of the same tenant, which waits too"))
                        : tenant != first
                            ? (WaitReasons.TenantOverShare, string.Create(CultureInfo.InvariantCulture,
                                $"tenant {tenant.Name} holds {Held(tenant)} indexes, a fair share of {Share(tenant):0.###} (weight {tenant.Weight:0.###}) is {FairOf(tenant)}; {first!.Name} (share {Share(first):0.###}, weight {first.Weight:0.###}) is served first"))
                            : (WaitReasons.QuotaExhausted, QuotaMessage(workload));
                seen.Add(workload.Key);
                yield return new Admission(workload.Key, _allowance[workload.Key], reason, message, position);
            }

            foreach (var workload in _tenants.Values.SelectMany(t => t.Workloads).Where(w => !seen.Contains(w.Key)))
            {
                yield return new Admission(workload.Key, _allowance[workload.Key], null, null, null);
            }
        }

        private static int Held(Tenant tenant) => tenant.Workloads.Sum(w => w.Held);

        private int FairOf(Tenant tenant) => tenant.Workloads.Sum(w => _fair.GetValueOrDefault(w.Key, _allowance[w.Key]));

        private string QuotaMessage(Workload workload)
        {
            static string Of(long used, long quota, string unit) => quota is int.MaxValue or long.MaxValue ? "" : string.Create(CultureInfo.InvariantCulture, $", {used}{unit} of {quota}{unit}");
            var numbers = (Of(_indexes, _quota.Indexes, " indexes") + Of(_milliCpu, _quota.MilliCpu, "m cpu") + Of(_memory, _quota.MemoryBytes, " bytes")).TrimStart(',', ' ');
            return string.Create(CultureInfo.InvariantCulture,
                $"queue {_queue.Name} on {_backend.Name} has no room for its next index ({numbers} in use; one needs {workload.MilliCpuPerIndex}m cpu, {workload.MemoryBytesPerIndex} bytes); it starts as indexes finish");
        }
    }

    private sealed class Tenant(string name, double weight, double history)
    {
        public string Name { get; } = name;
        public double Weight { get; } = weight > 0 ? weight : 1;
        public double History { get; } = history;
        public List<Workload> Workloads { get; } = [];
        public long Indexes { get; private set; }
        public long MilliCpu { get; private set; }
        public long Memory { get; private set; }
        public bool Blocked { get; set; }

        /// <summary>How many of <see cref="Workloads"/>, in order, have all they want.</summary>
        public int Served { get; set; }

        public void Add(Workload workload, int indexes) =>
            (Indexes, MilliCpu, Memory) = (Indexes + indexes, MilliCpu + indexes * workload.MilliCpuPerIndex, Memory + indexes * workload.MemoryBytesPerIndex);
    }
}
