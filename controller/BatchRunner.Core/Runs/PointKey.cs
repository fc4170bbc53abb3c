using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Sweeps;

namespace BatchRunner.Core.Runs;

/// <summary>
/// What decides one index's result, field by field, and its hash: two indexes (of any run of any BatchJob in one
/// namespace) with the same key compute the same thing, so the later one may take the earlier one's result. The run
/// id is not in it (nor the BatchJob's name, nor execution settings: parallelism, retries, timeouts, queue), so a
/// sweep that grows by new points finds its earlier points. Pure: what a backend knows of the program's files (the
/// local backend's digests of the files the command names, an image digest) comes in as <paramref name="program"/>.
/// </summary>
public sealed record PointKey(string Hash, IReadOnlyList<(string Field, string Hash)> Fields)
{
    /// <summary>The fields, in the order <c>explain</c> names them.</summary>
    public static IReadOnlyList<string> FieldNames { get; } = ["image", "program", "command", "args", "env", "resources", "params", "seed", "results.format"];

    public static PointKey For(BatchJob job, IndexAssignment assignment, string? program)
    {
        var spec = job.Spec;
        string[] values =
        [
            spec.Image ?? "",
            program ?? "",
            JsonSerializer.Serialize(spec.Command, Json.PlainJson.Default.IReadOnlyListString),
            JsonSerializer.Serialize(spec.Args, Json.PlainJson.Default.IReadOnlyListString),
            string.Join('\n', spec.Env.OrderBy(e => e.Name, StringComparer.Ordinal).Select(e => e.Name + "=" + e.Value)),
            string.Create(CultureInfo.InvariantCulture, $"{spec.Resources.MilliCpu}m/{spec.Resources.MemoryBytes}"),
            assignment.ParamsJson,
            assignment.Seed.ToString(CultureInfo.InvariantCulture),
            spec.Results.Format.ToString(),
        ];
        var fields = FieldNames.Select((name, i) => (name, Short(values[i]))).ToList();
        return new PointKey("p" + Short(string.Join('\n', fields.Select(f => f.Item1 + ":" + f.Item2)), 32), fields);
    }

    /// <summary>The fields whose hash differs from <paramref name="other"/>'s, in order.</summary>
    public IReadOnlyList<string> DifferingFrom(IReadOnlyList<(string Field, string Hash)> other)
    {
        var theirs = other.ToDictionary(f => f.Field, f => f.Hash, StringComparer.Ordinal);
        return Fields.Where(f => !theirs.TryGetValue(f.Field, out var hash) || hash != f.Hash).Select(f => f.Field).ToList();
    }

    /// <summary>The fields as stored beside a point (<c>field=hash</c> per line).</summary>
    public string FieldsText => string.Join('\n', Fields.Select(f => f.Field + "=" + f.Hash));

    public static IReadOnlyList<(string Field, string Hash)> ParseFields(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).Where(p => p.Length == 2).Select(p => (p[0], p[1])).ToList();

    private static string Short(string text, int hexDigits = 16) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..hexDigits];
}
