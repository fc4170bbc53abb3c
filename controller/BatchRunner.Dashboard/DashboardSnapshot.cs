namespace BatchRunner.Dashboard;

/// <summary>
/// Every BatchJob and queue a host sees at one moment: BatchJobs newest first (then by namespace and name), queues by
/// name; built once per change, then read by every request until the next.
/// </summary>
public sealed class DashboardSnapshot
{
    private readonly Dictionary<(string Namespace, string Name), BatchJobView> _byKey;
    private readonly Dictionary<string, QueueView> _queues;

    public DashboardSnapshot(long version, IEnumerable<BatchJobView> batchJobs, IEnumerable<QueueView> queues)
    {
        Version = version;
        BatchJobs = batchJobs
            .OrderByDescending(b => b.Created ?? DateTimeOffset.MinValue)
            .ThenBy(b => b.Namespace, StringComparer.Ordinal).ThenBy(b => b.Name, StringComparer.Ordinal)
            .ToList();
        Queues = queues.OrderBy(q => q.Name, StringComparer.Ordinal).ToList();
        _byKey = BatchJobs.ToDictionary(b => (b.Namespace, b.Name));
        _queues = Queues.ToDictionary(q => q.Name, StringComparer.Ordinal);
    }

    public static DashboardSnapshot Empty { get; } = new(0, [], []);

    /// <summary>Grows with every change a host saw: the same version, the same pages.</summary>
    public long Version { get; }

    public IReadOnlyList<BatchJobView> BatchJobs { get; }

    public IReadOnlyList<QueueView> Queues { get; }

    public BatchJobView? Find(string ns, string name) => _byKey.GetValueOrDefault((ns, name));

    public QueueView? FindQueue(string name) => _queues.GetValueOrDefault(name);

    /// <summary>A queue's unfinished BatchJobs in line: those with a position first, by position, then the rest by name.</summary>
    public IReadOnlyList<BatchJobView> InQueue(string queue) => BatchJobs
        .Where(b => b.Queue == queue && !b.IsFinished)
        .OrderBy(b => b.Position ?? int.MaxValue)
        .ThenBy(b => b.Namespace, StringComparer.Ordinal).ThenBy(b => b.Name, StringComparer.Ordinal)
        .ToList();
}

/// <summary>Which BatchJobs the list shows: all the fields are optional, and the page counts from 1.</summary>
/// <param name="Phase">A phase, or <see cref="BatchJobFilter.Waiting"/> for those a queue holds back.</param>
/// <param name="Text">Part of a name (or namespace/name), case-insensitive.</param>
public sealed record BatchJobFilter(string? Namespace = null, string? Phase = null, string? Queue = null, string? Text = null, int Page = 1)
{
    public const string Waiting = "Waiting";

    public static IReadOnlyList<string> Phases { get; } = ["Pending", Waiting, "Running", "Succeeded", "Failed", "Cancelled"];

    public bool Matches(BatchJobView b, bool ignorePhase = false) =>
        (string.IsNullOrEmpty(Namespace) || b.Namespace == Namespace)
        && (string.IsNullOrEmpty(Queue) || b.Queue == Queue)
        && (string.IsNullOrEmpty(Text) || $"{b.Namespace}/{b.Name}".Contains(Text, StringComparison.OrdinalIgnoreCase))
        && (ignorePhase || string.IsNullOrEmpty(Phase) || (Phase == Waiting ? b.IsWaiting : b.Phase == Phase));
}

/// <param name="Counts">BatchJobs matching every field but the phase, by phase (and <see cref="BatchJobFilter.Waiting"/>).</param>
public sealed record BatchJobPage(IReadOnlyList<BatchJobView> Rows, int Page, int Pages, int Matching, IReadOnlyDictionary<string, int> Counts);

public static class BatchJobList
{
    /// <summary>
    /// One page of the BatchJobs the filter matches, in the snapshot's order; a page past the last is the last. One
    /// pass over the snapshot: thousands of BatchJobs cost a millisecond or so, not a query each.
    /// </summary>
    public static BatchJobPage Page(DashboardSnapshot snapshot, BatchJobFilter filter, int pageSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var counts = BatchJobFilter.Phases.ToDictionary(p => p, _ => 0, StringComparer.Ordinal);
        var matching = new List<BatchJobView>();
        foreach (var b in snapshot.BatchJobs)
        {
            if (!filter.Matches(b, ignorePhase: true))
            {
                continue;
            }

            counts[b.Phase] = counts.GetValueOrDefault(b.Phase) + 1;
            if (b.IsWaiting)
            {
                counts[BatchJobFilter.Waiting]++;
            }

            if (filter.Matches(b))
            {
                matching.Add(b);
            }
        }

        var pages = Math.Max(1, (matching.Count + pageSize - 1) / pageSize);
        var page = Math.Clamp(filter.Page, 1, pages);
        return new BatchJobPage(matching.Skip((page - 1) * pageSize).Take(pageSize).ToList(), page, pages, matching.Count, counts);
    }
}
