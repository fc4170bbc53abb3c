using System.Text;
using System.Text.Json;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Local.Query;
using BatchRunner.Store;
using BatchRunner.Results.Tests.Support;
using CsCheck;

namespace BatchRunner.Results.Tests;

/// <summary>
/// Whatever a workload writes: generated outputs (any keys — empty, differing only in case, control characters,
/// the table's own names —, any types, CSV of any width and quoting, lines that are not rows) give the same answer
/// raw and compacted, every row the ledger counts is in the table and none it does not, and the other runs of the
/// store stay queryable as they were.
/// </summary>
public sealed class OutputPropertyTests
{
    private static readonly Gen<string> Key = Gen.OneOf(
        Gen.OneOf<string>("", "v", "V", "x", "X", "index", "seed", "output_x", "unnamed", "a b", "é", "q\"q", "tab\tkey", "esc\u001bkey", "nul\0key", "👍"),
        Gen.String[Gen.Char["aAbB_\u0001 "], 0, 4]);

    private static readonly Gen<JsonElement> Scalar = Gen.OneOf(
        Gen.Int[-5, 5].Select(i => JsonSerializer.SerializeToElement(i)),
        Gen.Double[-10, 10].Select(d => JsonSerializer.SerializeToElement(Math.Round(d, 3))),
        Gen.String[Gen.Char["ab,\"\n\u001b é"], 0, 5].Select(t => JsonSerializer.SerializeToElement(t)),
        Gen.Bool.Select(b => JsonSerializer.SerializeToElement(b)),
        Gen.Const(JsonSerializer.SerializeToElement<object?>(null)));

    private static readonly Gen<JsonElement> Value = Gen.Frequency(
        (6, Scalar),
        (1, Gen.Dictionary(Gen.OneOf<string>("a", "b", "A"), Scalar)[0, 2].Select(d => JsonSerializer.SerializeToElement(d))),
        (1, Scalar.Array[0, 3].Select(a => JsonSerializer.SerializeToElement(a))));

    /// <summary>One line of a .jsonl file: mostly an object, sometimes not a row at all.</summary>
    private static readonly Gen<string> JsonLine = Gen.Frequency(
        (8, Gen.Select(Key, Value).Array[0, 4].Select(Object)),
        (1, Gen.OneOf<string>("", "[1, 2]", "{\"v\": 1", "7", "not json", "{\"a\": 1} {\"b\": 2}", "\u001b[31m{}")));

    private static readonly Gen<string> CsvField = Gen.OneOf(
        Gen.OneOf<string>("", "1", "2.5", "true", "x", "a,b", "q\"q", "line\nbreak", " 3 "),
        Gen.String[Gen.Char["ab1,\" "], 0, 4]);

    /// <summary>A .csv file: a header of 1 to 4 names, rows mostly of its width, quoted as RFC 4180 does or not at all.</summary>
    private static readonly Gen<string> CsvFile = Gen.Select(Key.Array[1, 4], Gen.Int[0, 4], Gen.Bool).SelectMany((header, rows, quote) =>
        Gen.Frequency((5, Gen.Const(header.Length)), (1, Gen.Int[0, 5])).SelectMany(width => CsvField.Array[width, width]).Array[rows, rows]
            .Select(body => string.Concat(new[] { header }.Concat(body).Select(r => string.Join(',', r.Select(f => Field(f, quote))) + "\n"))));

    [Fact]
    public void Any_json_lines_answer_the_same_raw_and_compacted_and_match_the_ledger()
    {
        JsonLine.Array[0, 5].Array[1, 3].Sample(indexes => Check(indexes.Select(lines => string.Join('\n', lines) + "\n").ToArray(), ResultsFormat.Jsonl), iter: 40, threads: 1);
    }

    [Fact]
    public void Any_csv_answers_the_same_raw_and_compacted_and_matches_the_ledger()
    {
        CsvFile.Array[1, 3].Sample(files => Check(files, ResultsFormat.Csv), iter: 40, threads: 1);
    }

    private static void Check(string[] outputs, ResultsFormat format)
    {
        using var temp = new TempFolder();
        var store = temp.Sub("store");
        WriteRun(store, "steady", "r000000000aa", ["{\"mean\": 1.5, \"label\": \"ok\"}\n"], ResultsFormat.Jsonl);
        WriteRun(store, "hostile", "r000000000bb", outputs, format);
        const string Steady = "SELECT * FROM results WHERE batchjob = 'steady'";
        const string All = "SELECT * FROM results ORDER BY ALL";

        List<string> raw;
        using (var engine = ResultsQueryEngine.Open(store))
        {
            Assert.Empty(engine.Problems);
            Assert.Equal(["batchjob | namespace | run | index | repeat | seed | x | mean | label", "steady | default | r000000000aa | 0 | 0 | 7 | 1 | 1.5 | ok"],
                Narrow(LocalRuns.Answer(engine, Steady)));
            raw = LocalRuns.Answer(engine, All);
            // The ledger's count of each attempt's rows is what the table holds of it.
            Assert.Equal(
                LocalRuns.Answer(engine, "SELECT \"index\", output_rows FROM indexes WHERE batchjob = 'hostile' ORDER BY 1"),
                LocalRuns.Answer(engine, "SELECT i.\"index\", count(r.\"index\") AS output_rows FROM indexes i LEFT JOIN results r ON r.batchjob = i.batchjob AND r.\"index\" = i.\"index\" WHERE i.batchjob = 'hostile' GROUP BY 1 ORDER BY 1"));
        }

        LocalRuns.Compactor().CompactAsync(new LocalResultsStore(store), "hostile", "r000000000bb", force: false, CancellationToken.None).GetAwaiter().GetResult();
        using var compacted = ResultsQueryEngine.Open(store);
        Assert.Equal(["r000000000bb"], compacted.CompactedRuns);
        AssertSameAnswer(raw, LocalRuns.Answer(compacted, All));
    }

    /// <summary>Equal answers, or the first line that differs, whole.</summary>
    private static void AssertSameAnswer(List<string> raw, List<string> compacted)
    {
        var at = Enumerable.Range(0, Math.Min(raw.Count, compacted.Count)).FirstOrDefault(i => raw[i] != compacted[i], -1);
        Assert.True(at < 0 && raw.Count == compacted.Count, at < 0
            ? $"raw has {raw.Count} lines, compacted {compacted.Count}"
            : $"line {at} differs:\nheader: {raw[0]}\nraw:       {raw[at]}\ncompacted: {compacted[at]}\ncompacted header: {compacted[0]}");
    }

    /// <summary>The steady run's own columns (the hostile run adds its own, NULL for it).</summary>
    private static List<string> Narrow(List<string> answer)
    {
        var header = answer[0].Split(" | ");
        var keep = header.Select((c, i) => (c, i)).Where(p => p.c is "batchjob" or "namespace" or "run" or "index" or "repeat" or "seed" or "x" or "mean" or "label").Select(p => p.i).ToList();
        return answer.Select(line => string.Join(" | ", keep.Select(i => line.Split(" | ")[i]))).ToList();
    }

    /// <summary>A run in the store layout as a runner leaves it: each index's output, and its ledger row saying what the output holds.</summary>
    private static void WriteRun(string store, string job, string run, IReadOnlyList<string> outputs, ResultsFormat format)
    {
        for (var index = 0; index < outputs.Count; index++)
        {
            var folder = Path.Combine(store, StoreLayout.OutputPrefix(job, run, index, 1));
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "out." + OutputInspector.Extension(format)), outputs[index]);
            var row = new LedgerRow
            {
                BatchJob = job, Namespace = "default", Run = run, Index = index, Attempt = 1, Repeat = 0, Seed = 7 + index,
                Params = JsonSerializer.SerializeToElement(new { x = index + 1 }), Status = "succeeded", ExitCode = 0,
                StartedAt = DateTimeOffset.UnixEpoch, FinishedAt = DateTimeOffset.UnixEpoch.AddSeconds(1), DurationSeconds = 1, Backend = "local",
            };
            var ledger = LocalResultsStore.InspectOutput(folder, format).ApplyTo(row);
            File.WriteAllBytes(Path.Combine(store, StoreLayout.LedgerKey(job, run, index, 1)), ledger.ToJsonUtf8());
        }
    }

    private static string Object((string Key, JsonElement Value)[] members)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            foreach (var (key, value) in members)
            {
                json.WritePropertyName(key);
                value.WriteTo(json);
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string Field(string text, bool quote) => quote ? "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : text;
}
