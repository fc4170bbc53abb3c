using System.Text;
using System.Text.Json.Nodes;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Results.Tests;

/// <summary>
/// <c>batchrunner compact --results s3://…</c> and then <c>batchrunner query --store s3://…</c>, run as the
/// <c>./batchrunner</c> binary (Native AOT, as users run it) against fauxqs's S3: reflection the trimmer removed
/// would fail only here, at run time.
/// </summary>
public sealed class NativeCompactTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>The CLI's environment: S3 settings as a deployment gives them, and a temporary folder of the test's own.</summary>
    private static Dictionary<string, string> Environment(string tmp)
    {
        var environment = S3Server.Shared.Environment();
        environment["TMPDIR"] = tmp;
        return environment;
    }

    [Fact]
    public async Task Compact_over_s3_writes_parquet_and_query_over_s3_answers_from_it_as_over_the_raw_files()
    {
        // CompactionTests' sweep (a failed attempt, a malformed line, an index with no output), run here, put in S3 raw.
        var local = _temp.Sub("store");
        var job = Wrapper.Job(CompactionTests.Script, $"env: [{{name: SCRATCH, value: {System.Text.Json.JsonSerializer.Serialize(_temp.Path)}}}]\nsweep: {{grid: {{a: [1, 2], b: [x, y]}}, repeats: 2}}\nretry: {{attempts: 2, backoffSeconds: 0}}", "native");
        var runId = RunIdentity.For(job);
        await LocalRuns.RunAsync(local, job);
        var (s3, uri) = await S3Server.Shared.NewStoreAsync();
        using var store = s3;
        foreach (var file in Directory.EnumerateFiles(local, "*", SearchOption.AllDirectories))
        {
            await store.PutFileAsync(Path.GetRelativePath(local, file).Replace('\\', '/'), file, CancellationToken.None);
        }

        var tmp = _temp.Sub("tmp");
        var raw = new List<CliProcess.Result>();
        foreach (var sql in CompactionTests.Queries)
        {
            var answer = await CliProcess.RunAsync(["query", "--store", local, "--format", "csv", sql], Environment(tmp));
            Assert.True(answer.ExitCode == 0 && answer.Stdout.Split('\n').Length > 2, answer.ToString());
            raw.Add(answer);
        }

        var compact = await CliProcess.RunAsync(["compact", "native", "--results", uri], Environment(tmp));

        Assert.True(compact.ExitCode == 0, compact.ToString());
        Assert.StartsWith($"native run {runId}: 9 attempts, 14 result rows → ", compact.Stdout, StringComparison.Ordinal);
        var manifest = JsonNode.Parse((await store.GetBytesAsync(StoreLayout.RunManifestKey("native", runId), CancellationToken.None))!)!;
        Assert.Equal((14L, 9L), ((long)manifest["compaction"]!["results"]!["rows"]!, (long)manifest["compaction"]!["indexes"]!["rows"]!));
        Assert.NotNull(await store.GetBytesAsync(StoreLayout.CompactedKey("native", runId, "results", 0), CancellationToken.None));

        // Were the raw files still read, this extra raw row of the compacted run would show up.
        var rawKey = StoreLayout.OutputPrefix("native", runId, 0, 1) + "/rows.jsonl";
        var rows = (await store.GetBytesAsync(rawKey, CancellationToken.None))!;
        await store.PutBytesAsync(rawKey, rows.Concat(Encoding.UTF8.GetBytes("{\"v\": 999}\n")).ToArray(), CancellationToken.None);

        foreach (var (sql, expected) in CompactionTests.Queries.Zip(raw))
        {
            var answer = await CliProcess.RunAsync(["query", "--store", uri, "--format", "csv", sql], Environment(tmp));
            Assert.True(answer.ExitCode == 0, answer.ToString());
            Assert.Equal(expected.Stdout, answer.Stdout);
        }

        var count = await CliProcess.RunAsync(["query", "--store", uri, "--format", "csv", "SELECT count(*) AS n FROM results"], Environment(tmp));
        Assert.Equal("n\n14\n", count.Stdout.ReplaceLineEndings("\n"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));
    }
}
