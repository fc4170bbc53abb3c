namespace BatchRunner.Core.Scheduling;

/// <summary>When a waiting BatchJob should start and finish, at the median and the 90th percentile of index runtimes.</summary>
public sealed record Eta(TimeSpan StartP50, TimeSpan StartP90, TimeSpan FinishP50, TimeSpan FinishP90);

/// <summary>Index runtimes as a status keeps them: how many were seen, their median and 90th percentile.</summary>
public sealed record RuntimeSummary(int Count, double P50Seconds, double P90Seconds)
{
    public static RuntimeSummary? Of(IReadOnlyCollection<TimeSpan> runtimes)
    {
        if (runtimes.Count == 0)
        {
            return null;
        }

        var sorted = runtimes.Select(r => r.TotalSeconds).Order().ToArray();
        return new RuntimeSummary(sorted.Length, EtaEstimator.Quantile(sorted, 0.5), EtaEstimator.Quantile(sorted, 0.9));
    }

    /// <summary>Two summaries as one (the run's and the earlier ones'), weighing each by its count.</summary>
    public static RuntimeSummary? Merge(RuntimeSummary? a, RuntimeSummary? b) => (a, b) switch
    {
        (null, _) => b,
        (_, null) => a,
        _ => new RuntimeSummary(a.Count + b.Count,
            (a.P50Seconds * a.Count + b.P50Seconds * b.Count) / (a.Count + b.Count),
            (a.P90Seconds * a.Count + b.P90Seconds * b.Count) / (a.Count + b.Count)),
    };
}

/// <summary>
/// Estimates start and finish from index runtimes already observed (this run's, earlier runs' of the same BatchJob,
/// else the queue's recent ones): the pool frees its slots at its size over one runtime, the work ahead in line takes
/// them first, then the BatchJob runs its remaining indexes at the rate it is allowed. An estimate, and said to be one:
/// without any observed runtime there is none.
/// </summary>
public static class EtaEstimator
{
    /// <param name="runtimes">Observed index runtimes.</param>
    /// <param name="remaining">Its indexes not finished (running ones included).</param>
    /// <param name="running">Its indexes running now.</param>
    /// <param name="indexesAhead">Waiting indexes that start before its next one (the work ahead of it in line).</param>
    /// <param name="slots">Indexes its pool runs at once (the quota, or what runs when that is unlimited).</param>
    /// <param name="rate">Indexes it will run at once once going (its parallelism, within its share).</param>
    public static Eta? Estimate(IReadOnlyList<TimeSpan> runtimes, int remaining, int running, int indexesAhead, int slots, int rate)
    {
        if (runtimes.Count == 0 || remaining <= 0)
        {
            return null;
        }

        return Estimate(RuntimeSummary.Of(runtimes)!, remaining, running, indexesAhead, slots, rate);
    }

    /// <summary>The same from a summary of runtimes (what a status keeps instead of every runtime).</summary>
    public static Eta? Estimate(RuntimeSummary runtimes, int remaining, int running, int indexesAhead, int slots, int rate)
    {
        if (runtimes.Count == 0 || remaining <= 0)
        {
            return null;
        }

        return new Eta(Start(runtimes.P50Seconds), Start(runtimes.P90Seconds), Finish(runtimes.P50Seconds), Finish(runtimes.P90Seconds));

        TimeSpan Start(double runtime) => running > 0 ? TimeSpan.Zero : TimeSpan.FromSeconds((indexesAhead + 1) * runtime / Math.Max(1, slots));

        TimeSpan Finish(double runtime) => Start(runtime) + TimeSpan.FromSeconds(Math.Ceiling((double)remaining / Math.Max(1, rate)) * runtime);
    }

    /// <summary>The nearest-rank quantile of sorted values.</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q) =>
        sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];

    /// <summary>
    /// The waiting indexes ahead of each waiting workload of a pool, in its line: what the workloads with a lower
    /// position still want beyond their allowance.
    /// </summary>
    public static IReadOnlyDictionary<string, int> IndexesAhead(IReadOnlyList<Admission> admissions, IReadOnlyList<Workload> workloads)
    {
        var wanted = workloads.ToDictionary(w => w.Key, w => w.Wanted, StringComparer.Ordinal);
        var ahead = new Dictionary<string, int>(StringComparer.Ordinal);
        var sum = 0;
        foreach (var admission in admissions.Where(a => a.Position is not null).OrderBy(a => a.Position))
        {
            ahead[admission.Key] = sum;
            sum += Math.Max(0, wanted[admission.Key] - admission.Allowance);
        }

        return ahead;
    }
}
