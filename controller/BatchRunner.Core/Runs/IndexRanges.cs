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
        foreach (var part in (ranges ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var bounds = part.Split('-', 2);
            var first = int.Parse(bounds[0], CultureInfo.InvariantCulture);
            var last = bounds.Length == 2 ? int.Parse(bounds[1], CultureInfo.InvariantCulture) : first;
            for (var index = first; index <= last; index++)
            {
                result.Add(index);
            }
        }

        return result;
    }

    public static int Count(string? ranges) => Parse(ranges).Count;
}
