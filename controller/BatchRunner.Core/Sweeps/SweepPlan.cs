using System.Text;
using BatchRunner.Core.Json;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Sweeps;

/// <summary>What one index runs with: its parameter set, which repeat of that point it is, and its seed.</summary>
public readonly record struct IndexAssignment(int Index, int Point, int Repeat, long Seed, string ParamsJson);

/// <summary>
/// Maps an index to its parameters and seed, deterministically and in O(parameters) without materialising the
/// sweep: a 100,000-index plan costs a few arrays. Index order: grid points in nested-loop order of the grid's
/// parameter names sorted by ordinal (the first name is the outermost loop), or list order; each point's repeats
/// consecutive: <c>index = point * repeats + repeat</c>. Parameters appear in the same name order in the JSON.
/// </summary>
public sealed class SweepPlan
{
    private readonly SweepSpec? _sweep;
    private readonly int _repeats;
    private readonly string[][] _axisFragments;
    private readonly int[] _axisStrides;
    private readonly string[] _listJson;

    public SweepPlan(BatchJobSpec spec)
    {
        _sweep = spec.Sweep;
        Count = spec.Completions;
        _repeats = _sweep?.Repeats ?? 1;
        BaseSeed = _sweep?.Seed ?? 0;
        var grid = _sweep?.Grid ?? [];
        _axisFragments = grid.Select(axis => axis.Values.Select(v => $"{JsonStrings.Quote(axis.Name)}:{v.Json}").ToArray()).ToArray();
        _axisStrides = new int[grid.Count];
        var stride = 1;
        for (var i = grid.Count - 1; i >= 0; i--)
        {
            _axisStrides[i] = stride;
            stride *= grid[i].Values.Count;
        }

        _listJson = (_sweep?.List ?? []).Select(point => "{" + string.Join(",", point.Select(p => $"{JsonStrings.Quote(p.Name)}:{p.Value.Json}")) + "}").ToArray();
        ParameterNames = grid.Count > 0
            ? grid.Select(a => a.Name).ToArray()
            : (_sweep?.List ?? []).SelectMany(p => p.Select(x => x.Name)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Number of indexes.</summary>
    public int Count { get; }

    public long BaseSeed { get; }

    /// <summary>Every parameter name, sorted by ordinal.</summary>
    public IReadOnlyList<string> ParameterNames { get; }

    public IndexAssignment For(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        var point = index / _repeats;
        var repeat = index % _repeats;
        return new IndexAssignment(index, point, repeat, SeedFor(BaseSeed, index), ParamsJsonForPoint(point));
    }

    /// <summary>
    /// The seed of an index, in [0, 2^31) so every language's RNG accepts it: the index mixed by a one-to-one map
    /// of 31-bit numbers keyed by SplitMix64 of the base seed, so no two indexes of a job share a seed (hashing
    /// and then truncating to 31 bits would: a 100,000-index sweep got a few duplicates). It depends on nothing
    /// else (not the job's name), so a renamed job reproduces its results.
    /// </summary>
    public static long SeedFor(long baseSeed, int index)
    {
        var (low, high) = SeedKey(baseSeed);
        return SeedFor(low, high, index);
    }

    /// <summary>
    /// The two 32-bit halves of a job's seed key (SplitMix64 of the base seed) that <see cref="SeedFor(long, int)"/>
    /// mixes with an index. Backends that compute seeds elsewhere (the pod entrypoint) are given these.
    /// </summary>
    public static (uint Low, uint High) SeedKey(long baseSeed)
    {
        unchecked
        {
            var key = (ulong)baseSeed + 0x9E3779B97F4A7C15UL;
            key = (key ^ (key >> 30)) * 0xBF58476D1CE4E5B9UL;
            key = (key ^ (key >> 27)) * 0x94D049BB133111EBUL;
            key ^= key >> 31;
            return ((uint)key, (uint)(key >> 33));
        }
    }

    /// <summary>Multipliers of the seed mix, shared with the pod entrypoint so both compute the same seeds.</summary>
    public const uint SeedMultiplier1 = 0x7FEB352DU;

    /// <inheritdoc cref="SeedMultiplier1"/>
    public const uint SeedMultiplier2 = 0x846CA68BU;

    private static long SeedFor(uint keyLow, uint keyHigh, int index)
    {
        const uint mask = 0x7FFF_FFFF;
        unchecked
        {
            // Each step maps [0, 2^31) onto itself one to one: adding, x ^= x >> s, multiplying by an odd number.
            var x = ((uint)index + keyLow) & mask;
            x ^= x >> 16;
            x = (x * SeedMultiplier1) & mask;
            x ^= x >> 15;
            x = (x * SeedMultiplier2) & mask;
            x ^= x >> 16;
            return (x ^ keyHigh) & mask;
        }
    }

    private string ParamsJsonForPoint(int point)
    {
        if (_listJson.Length > 0)
        {
            return _listJson[point];
        }

        if (_axisFragments.Length == 0)
        {
            return "{}";
        }

        var builder = new StringBuilder("{", 64);
        for (var axis = 0; axis < _axisFragments.Length; axis++)
        {
            var fragments = _axisFragments[axis];
            if (axis > 0)
            {
                builder.Append(',');
            }

            builder.Append(fragments[point / _axisStrides[axis] % fragments.Length]);
        }

        return builder.Append('}').ToString();
    }
}
