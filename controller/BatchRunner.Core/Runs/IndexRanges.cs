using System.Globalization;
using System.Text;

namespace BatchRunner.Core.Runs;

/// <summary>The range notation Kubernetes uses for sets of indexes (<c>1,3-5,8</c>).</summary>
public static class IndexRanges
{
    public static string Format(IEnumerable<int> indexes)
    {
        var sorted = indexes.Distinct().Order().ToList();
        var builder = new StringBuilder();
        for (var i = 0; i < sorted.Count; i++)
        {
            var start = sorted[i];
            while (i + 1 < sorted.Count && sorted[i + 1] == sorted[i] + 1)
            {
                i++;
            }

            if (builder.Length > 0)
            {
                builder.Append(',');
            }

            builder.Append(start.ToString(CultureInfo.InvariantCulture));
            if (sorted[i] != start)
            {
                builder.Append('-').Append(sorted[i].ToString(CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }

    public static IReadOnlyList<int> Parse(string? ranges)
    {
        var result = new List<int>();
        foreach (var (first, last) in Bounds(ranges))
        {
            for (var index = first; index <= last; index++)
            {
                result.Add(index);
            }
        }

        return result;
    }

    /// <summary>Each range's first and last index, as written.</summary>
    private static IEnumerable<(int First, int Last)> Bounds(string? ranges)
    {
        foreach (var part in (ranges ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var bounds = part.Split('-', 2);
            var first = int.Parse(bounds[0], CultureInfo.InvariantCulture);
            yield return (first, bounds.Length == 2 ? int.Parse(bounds[1], CultureInfo.InvariantCulture) : first);
        }
    }

    /// <summary>How many indexes the ranges name, without listing them (a million-index range is two numbers).</summary>
    public static int Count(string? ranges) =>
        (int)Math.Min(Bounds(ranges).Sum(range => Math.Max(0L, (long)range.Last - range.First + 1)), int.MaxValue);

    /// <summary>
    /// The first ranges of <paramref name="ranges"/> that fit in <paramref name="maxChars"/> characters, cut between
    /// two ranges (never inside one), and whether any were left out: a list of failed indexes kept in an object of
    /// bounded size (a BatchJob's status) keeps its beginning, and its count says how many there are in all.
    /// </summary>
    public static string? Truncate(string? ranges, int maxChars, out bool truncated)
    {
        truncated = ranges is not null && ranges.Length > maxChars;
        if (!truncated)
        {
            return ranges;
        }

        var cut = ranges!.LastIndexOf(',', Math.Min(maxChars, ranges.Length - 1));
        return cut <= 0 ? null : ranges[..cut];
    }

    /// <summary>
    /// Indexes a person wrote (<c>3,7-9</c>) checked against a run of <paramref name="total"/> indexes: null with
    /// <paramref name="error"/> naming the part that is wrong (not a number, a range backwards, outside the run).
    /// </summary>
    public static IReadOnlyList<int>? ParseWithin(string text, int total, out string? error)
    {
        var chosen = new SortedSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var bounds = part.Split('-', 2, StringSplitOptions.TrimEntries);
            if (!int.TryParse(bounds[0], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                || !int.TryParse(bounds.Length == 2 ? bounds[1] : bounds[0], NumberStyles.None, CultureInfo.InvariantCulture, out var last))
            {
                error = $"\"{part}\" is not an index or a range of them (write 3,7-9)";
                return null;
            }

            if (last < first)
            {
                error = $"\"{part}\" is a range written backwards (write {last}-{first})";
                return null;
            }

            if (last >= total)
            {
                error = string.Create(CultureInfo.InvariantCulture, $"index {last} is outside the run: it has {total} indexes (0 to {total - 1})");
                return null;
            }

            chosen.UnionWith(Enumerable.Range(first, last - first + 1));
        }

        error = null;
        return [.. chosen];
    }
}
