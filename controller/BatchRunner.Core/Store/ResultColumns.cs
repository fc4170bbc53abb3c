using System.Globalization;
using System.Text;

namespace BatchRunner.Core.Store;

/// <summary>One output column of a run: the key the workload wrote, and the name the <c>results</c> table gives it.</summary>
public sealed record ResultColumn(string Key, string Name);

/// <summary>
/// Names the columns of a run's results from the keys its workload wrote, so that any keys at all make a valid table:
/// SQL compares names without regard to case, cannot name the empty string, and the table's own columns (the keys
/// of an index and the run's parameters) come first. Deterministic: the same keys always give the same names.
/// 1. Keys in ordinal order.
/// 2. Control characters (C0, DEL, C1) and unpaired surrogates become <c>_</c>; an empty key is <c>unnamed</c>;
///    a name is at most <see cref="MaxNameLength"/> characters.
/// 3. A name of the table's own (<paramref name="reserved"/>) becomes <c>output_NAME</c>.
/// 4. A name already given (compared without case) gets the first free suffix <c>_2</c>, <c>_3</c>, ….
/// </summary>
public static class ResultColumns
{
    public const int MaxNameLength = 255;
    public const string EmptyKeyName = "unnamed";
    public const string ReservedPrefix = "output_";

    public static IReadOnlyList<ResultColumn> Plan(IEnumerable<string> keys, IEnumerable<string> reserved)
    {
        var taken = new HashSet<string>(reserved, StringComparer.OrdinalIgnoreCase);
        var given = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var columns = new List<ResultColumn>();
        foreach (var key in keys.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var name = Sanitize(key);
            if (taken.Contains(name))
            {
                name = Truncate(ReservedPrefix + name);
            }

            if (given.Contains(name) || taken.Contains(name))
            {
                var stem = name;
                for (var suffix = 2; given.Contains(name) || taken.Contains(name); suffix++)
                {
                    var tail = string.Create(CultureInfo.InvariantCulture, $"_{suffix}");
                    name = Truncate(stem, MaxNameLength - tail.Length) + tail;
                }
            }

            given.Add(name);
            columns.Add(new ResultColumn(key, name));
        }

        return columns;
    }

    /// <summary>A key as a name SQL can give: no control characters, not empty, not too long.</summary>
    public static string Sanitize(string key)
    {
        if (key.Length == 0)
        {
            return EmptyKeyName;
        }

        var text = new StringBuilder(key.Length);
        for (var i = 0; i < key.Length; i++)
        {
            var c = key[i];
            if (char.IsHighSurrogate(c) && i + 1 < key.Length && char.IsLowSurrogate(key[i + 1]))
            {
                text.Append(c).Append(key[++i]);
            }
            else
            {
                text.Append(char.IsControl(c) || char.IsSurrogate(c) ? '_' : c);
            }
        }

        return Truncate(text.ToString());
    }

    private static string Truncate(string name, int length = MaxNameLength)
    {
        if (name.Length <= length)
        {
            return name;
        }

        // Never between the two halves of a surrogate pair.
        var cut = char.IsLowSurrogate(name[length]) ? length - 1 : length;
        return name[..cut];
    }
}
