using BatchRunner.Core.Runs;
using BatchRunner.Store;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Results.Tests;

/// <summary>
/// <c>batchrunner query --store s3://bucket/prefix</c>, run as a process against fauxqs: the same SQL over a local
/// store and over that store uploaded to S3 prints the same answer, and the local copy DuckDB read is removed.
/// </summary>
public sealed class QueryOverS3Tests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>CompactionTests' sweep: integers, reals, text, nested values, a failed attempt, a malformed line.</summary>
    private BatchRunner.Core.Spec.BatchJob Job(string name) =>
        Wrapper.Job(CompactionTests.Script, $"env: [{{name: SCRATCH, value: {System.Text.Json.JsonSerializer.Serialize(_temp.Path)}}}]\nsweep: {{grid: {{a: [1, 2], b: [x, y]}}, repeats: 2}}\nretry: {{attempts: 2, backoffSeconds: 0}}", name);

    /// <summary>The CLI's environment: S3 settings as a deployment gives them, and a temporary folder of the test's own.</summary>
    private Dictionary<string, string> Environment(string tmp)
    {
        var environment = S3Server.Shared.Environment();
        environment["TMPDIR"] = tmp;
        return environment;
    }

    [Fact]
    public async Task The_same_query_over_a_local_store_and_the_same_store_in_s3_prints_the_same_answer()
    {
        // Two runs, one compacted (read from its Parquet) and one not (read from its raw files).
        var local = _temp.Sub("store");
        var first = Job("first");
        var second = Job("second");
        await LocalRuns.RunAsync(local, first);
        File.Delete(Path.Combine(_temp.Path, "failed-once"));
        await LocalRuns.RunAsync(local, second);
        await LocalRuns.Compactor().CompactAsync(new LocalResultsStore(local), "first", RunIdentity.For(first), force: false, CancellationToken.None);

        var (s3, uri) = await S3Server.Shared.NewStoreAsync();
        using (s3)
        {
            foreach (var file in Directory.EnumerateFiles(local, "*", SearchOption.AllDirectories))
            {
                await s3.PutFileAsync(Path.GetRelativePath(local, file).Replace('\\', '/'), file, CancellationToken.None);
            }
        }

        var tmp = _temp.Sub("tmp");
        string[][] queries =
        [
            // Ordered totally (CompactionTests' queries order within one BatchJob; here are two).
            ["--format", "csv", "SELECT * FROM results ORDER BY batchjob, \"index\", v"],
            ["--format", "json", "SELECT * FROM indexes ORDER BY batchjob, \"index\", attempt"],
            ["--format", "table", "SELECT batchjob, count(*) AS n, sum(v) AS total FROM results GROUP BY ALL ORDER BY ALL"],
            ["--format", "csv", CompactionTests.Queries[6]],
        ];
        foreach (var query in queries)
        {
            var overLocal = await CliProcess.RunAsync(["query", "--store", local, .. query], Environment(tmp));
            var overS3 = await CliProcess.RunAsync(["query", "--store", uri, .. query], Environment(tmp));

            Assert.True(overLocal.ExitCode == 0, overLocal.Stderr);
            Assert.True(overS3.ExitCode == 0, overS3.Stderr);
            Assert.True(overLocal.Stdout.Split('\n').Length > 2, overLocal.Stdout);
            Assert.Equal(overLocal.Stdout, overS3.Stdout);
            Assert.Equal(overLocal.Stderr, overS3.Stderr);
        }

        // Both runs are in the answer: 14 rows each (see CompactionTests.Job).
        var counts = await CliProcess.RunAsync(["query", "--store", uri, "--format", "csv", "SELECT batchjob, count(*) AS n FROM results GROUP BY ALL ORDER BY ALL"], Environment(tmp));
        Assert.Equal("batchjob,n\nfirst,14\nsecond,14\n", counts.Stdout.ReplaceLineEndings("\n"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));
    }

    [Fact]
    public async Task A_report_over_a_store_in_s3_shows_what_the_same_report_over_the_local_store_shows()
    {
        var local = _temp.Sub("store");
        var job = Job("reported");
        await LocalRuns.RunAsync(local, job);
        var (s3, uri) = await S3Server.Shared.NewStoreAsync();
        using (s3)
        {
            foreach (var file in Directory.EnumerateFiles(local, "*", SearchOption.AllDirectories))
            {
                await s3.PutFileAsync(Path.GetRelativePath(local, file).Replace('\\', '/'), file, CancellationToken.None);
            }
        }

        var tmp = _temp.Sub("tmp");
        var (fromLocal, fromS3) = (Path.Combine(_temp.Path, "local.html"), Path.Combine(_temp.Path, "s3.html"));
        var overLocal = await CliProcess.RunAsync(["report", "reported", "--results", local, "-o", fromLocal], Environment(tmp));
        var overS3 = await CliProcess.RunAsync(["report", "reported", "--results", uri, "-o", fromS3], Environment(tmp));

        Assert.True(overLocal.ExitCode == 0, overLocal.ToString());
        Assert.True(overS3.ExitCode == 0, overS3.ToString());
        Assert.Contains("8 indexes, 0 failed, 14 result rows", overS3.Stdout, StringComparison.Ordinal);
        var (a, b) = (ReportData(fromLocal), ReportData(fromS3));
        Assert.Equal(uri, (string?)b["store"]);
        foreach (var data in new[] { a, b })
        {
            data.Remove("store");
            data.Remove("generatedAt");
            foreach (var row in data["failed"]!["rows"]!.AsArray())
            {
                row!.AsObject().Remove("logs");
            }
        }

        // Sums of reals may differ in their last digits with the order DuckDB read the rows in: compared to 12 digits.
        Assert.Equal(Rounded(a)!.ToJsonString(), Rounded(b)!.ToJsonString());
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));
    }

    private static System.Text.Json.Nodes.JsonNode? Rounded(System.Text.Json.Nodes.JsonNode? node) => node switch
    {
        System.Text.Json.Nodes.JsonObject o => new System.Text.Json.Nodes.JsonObject(o.Select(p => KeyValuePair.Create(p.Key, Rounded(p.Value)))),
        System.Text.Json.Nodes.JsonArray a => new System.Text.Json.Nodes.JsonArray(a.Select(Rounded).ToArray()),
        System.Text.Json.Nodes.JsonValue v when v.TryGetValue<double>(out var number) => System.Text.Json.Nodes.JsonValue.Create(double.Parse(number.ToString("G12", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture)),
        _ => node?.DeepClone(),
    };

    /// <summary>The data a report file carries (the JSON its page draws).</summary>
    private static System.Text.Json.Nodes.JsonObject ReportData(string file)
    {
        var html = File.ReadAllText(file);
        var match = System.Text.RegularExpressions.Regex.Match(html, "<script type=\"application/json\" id=\"report-data\">(.*?)</script>", System.Text.RegularExpressions.RegexOptions.Singleline);
        Assert.True(match.Success, "the report carries no data");
        return System.Text.Json.Nodes.JsonNode.Parse(match.Groups[1].Value)!.AsObject();
    }

    [Fact]
    public async Task A_bad_query_over_s3_exits_2_and_leaves_no_copy_behind()
    {
        var (s3, uri) = await S3Server.Shared.NewStoreAsync();
        s3.Dispose();

        var tmp = _temp.Sub("tmp");
        var result = await CliProcess.RunAsync(["query", "--store", uri, "SELEC count(*) FROM results"], Environment(tmp));

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("query: ", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("SELEC", result.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));
    }

    [Fact]
    public async Task A_bucket_that_does_not_exist_is_named_and_exits_2()
    {
        var tmp = _temp.Sub("tmp");
        var missing = "s3://no-such-bucket-" + Guid.NewGuid().ToString("N")[..12] + "/results";
        var result = await CliProcess.RunAsync(["query", "--store", missing, "SELECT count(*) FROM results"], Environment(tmp));

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(missing, result.Stderr, StringComparison.Ordinal);
        Assert.Contains("NoSuchBucket", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("test", result.Stderr.Replace(missing, "", StringComparison.Ordinal), StringComparison.Ordinal); // never the credentials
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp));
    }
}
