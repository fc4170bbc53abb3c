using System.Globalization;
using BatchRunner.Core.Runs;

namespace BatchRunner.Kubernetes.Dispatch;

/// <summary>
/// How a run spreads over Indexed Jobs. One Job holds at most <see cref="MaxCompletions"/> completions (the API's
/// bound for Indexed Jobs), so a larger run, up to a million indexes, is split into parts of consecutive positions of
/// its index list, each a Job of its own whose completion <c>i</c> runs the <c>i</c>-th index of its part (through
/// <c>BATCHRUNNER_INDEXES</c>, as a rerun's Job does). Names are deterministic, so a controller that died half-way
/// through creating them creates what is missing and never a second Job. The run's parallelism spans the parts: it is
/// shared out in part order (<see cref="Shares"/>), so the first part runs first and the next one starts as it drains.
/// A run that fits one Job is one Job named after the BatchJob, as before splitting existed. Pure.
/// </summary>
public static class JobParts
{
    /// <summary>Most completions of one Indexed Job (Kubernetes validates <c>completions</c> and <c>parallelism</c> against it).</summary>
    public const int MaxCompletions = 100_000;

    /// <summary>How many Jobs a run of <paramref name="total"/> indexes needs at <paramref name="perJob"/> completions each.</summary>
    public static int CountOf(int total, int perJob) => Math.Max(1, (int)(((long)total + perJob - 1) / perJob));

    /// <summary>The Job of part <paramref name="part"/>: the BatchJob's own name for the first, so a run of one Job is named as it always was.</summary>
    public static string NameOf(string batchJob, int part) =>
        part == 0 ? BatchJobResource.JobName(batchJob) : string.Create(CultureInfo.InvariantCulture, $"{batchJob}-part-{part}");

    /// <summary>
    /// The parts of a run: positions of its index list (<paramref name="indexes"/>, or 0…total-1 when null) cut every
    /// <paramref name="perJob"/>. A run that fits one Job has one part with no range of its own (its completions are
    /// its indexes); each part of a split run carries its indexes as ranges.
    /// </summary>
    public static IReadOnlyList<JobPart> Of(string batchJob, int total, IReadOnlyList<int>? indexes, int perJob)
    {
        var count = CountOf(total, perJob);
        var parts = new List<JobPart>(count);
        for (var part = 0; part < count; part++)
        {
            var start = part * perJob;
            var size = Math.Max(0, Math.Min(perJob, total - start));
            string? ranges = null;
            if (count > 1 || indexes is not null)
            {
                ranges = indexes is null
                    ? size == 1 ? start.ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{start}-{start + size - 1}")
                    : IndexRanges.Format(Slice(indexes, start, size));
            }

            parts.Add(new JobPart(part, NameOf(batchJob, part), start, size, ranges));
        }

        return parts;
    }

    /// <summary>
    /// Indexes each part may run at once, from the run's <paramref name="parallelism"/>: first what each must keep
    /// (<paramref name="floors"/>: its pods already running, which a lower allowance does not kill), then the rest in
    /// part order, each non-last part up to the indexes it has left (<paramref name="remaining"/>); the last part takes
    /// whatever is left, so a run of one Job is given the run's parallelism as it is.
    /// </summary>
    public static int[] Shares(int parallelism, IReadOnlyList<int> remaining, IReadOnlyList<int> floors)
    {
        var shares = new int[remaining.Count];
        var left = parallelism;
        for (var part = 0; part < shares.Length; part++)
        {
            shares[part] = Math.Max(0, floors[part]);
            left -= shares[part];
        }

        for (var part = 0; part < shares.Length && left > 0; part++)
        {
            var room = part == shares.Length - 1 ? left : Math.Max(0, remaining[part] - shares[part]);
            var added = Math.Min(left, room);
            shares[part] += added;
            left -= added;
        }

        return shares;
    }

    /// <summary>
    /// Whether a running part's Job needs its parallelism changed to <paramref name="share"/>: a Job with more than it
    /// has left runs only what it has left, so a non-last part draining at its tail is not patched down at every
    /// completion (the last part takes the exact figure, as a run of one Job always did).
    /// </summary>
    public static bool NeedsPatch(int current, int share, int remaining, bool last) =>
        last ? current != share : Math.Min(current, remaining) != share;

    private static IEnumerable<int> Slice(IReadOnlyList<int> indexes, int start, int size)
    {
        for (var i = start; i < start + size; i++)
        {
            yield return indexes[i];
        }
    }
}

/// <summary>One Job of a run: its number, name, positions in the run's index list, and its indexes as ranges (null: its completions are the run's indexes).</summary>
public sealed record JobPart(int Number, string Name, int Start, int Count, string? Ranges)
{
    /// <summary>The rerun the Job runs (0: the run itself).</summary>
    public int RerunNumber { get; init; }
}
