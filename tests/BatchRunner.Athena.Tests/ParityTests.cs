using BatchRunner.Cli.Output;
using BatchRunner.Local.Query;

namespace BatchRunner.Athena.Tests;

/// <summary>
/// The same SQL through Athena (the client, the stub running the generated DDL over the compacted Parquet) and
/// through the local DuckDB engine (over the raw JSON of the same store) gives the same rows.
/// </summary>
public sealed class ParityTests(AthenaFixture fixture) : IClassFixture<AthenaFixture>
{
    public static TheoryData<string, string> Queries => new()
    {
        { "every results row", """SELECT batchjob, run, "index", "repeat", seed, servers, arrival_rate, mean_wait, served, label, estimate, samples, output_servers FROM results ORDER BY batchjob, run, "index", served""" },
        { "every attempt", """SELECT batchjob, run, "index", attempt, "repeat", seed, servers, arrival_rate, status, exit_code, reason, duration_seconds, backend, output_files, output_bytes FROM indexes ORDER BY batchjob, run, "index", attempt""" },
        { "a sweep's table", "SELECT servers, arrival_rate, count(*) AS n, round(avg(mean_wait), 9) AS mean_wait FROM results WHERE batchjob = 'mmc-sweep' GROUP BY servers, arrival_rate ORDER BY servers, arrival_rate" },
        { "outcomes", "SELECT batchjob, status, count(*) AS attempts FROM indexes GROUP BY batchjob, status ORDER BY batchjob, status" },
        { "the renamed output", "SELECT output_servers, samples FROM results WHERE output_servers IS NOT NULL ORDER BY samples" },
        { "nothing", "SELECT batchjob, mean_wait FROM results WHERE served < 0" },
        { "a column typed differently by two runs", "SELECT run, \"index\", samples, estimate FROM results WHERE batchjob = 'pi-estimate' ORDER BY run, \"index\"" },
        { "every attempt as a whole", """SELECT * FROM indexes ORDER BY batchjob, run, "index", attempt""" },
    };

    public static TheoryData<string, string, bool> QueriesOverBothLocalForms()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var row in Queries)
        {
            var (why, sql) = ((string)row[0], (string)row[1]);
            data.Add(why, sql, true);
            data.Add(why, sql, false);
        }

        return data;
    }

    /// <summary>The local engine reads the raw JSON files, or (as it does by default) the compacted Parquet.</summary>
    [Theory]
    [MemberData(nameof(QueriesOverBothLocalForms))]
    public async Task Athena_and_DuckDB_answer_the_same_rows(string why, string sql, bool raw)
    {
        QueryResult local;
        using (var engine = ResultsQueryEngine.Open(fixture.Store.Root, new ViewScope(RawOnly: raw)))
        {
            Assert.Equal(raw ? 0 : 4, engine.CompactedRuns.Count);
            local = engine.Execute(sql);
        }

        using var client = fixture.Client();
        var athena = await fixture.Runner(client).RunAsync(sql, CancellationToken.None);

        Assert.True(local.Rows.Count > 0 || why == "nothing", $"{why}: the local engine found no rows, so the comparison proves little");
        Assert.Equal(Csv(local.Columns, local.Rows), Csv(athena.Columns, athena.Rows));
    }

    [Fact]
    public void Setting_up_survived_throttling()
    {
        // The fixture ran the whole DDL with every 7th call throttled: the client retried them.
        Assert.True(fixture.Stub.Throttled > 0);
        Assert.True(fixture.Statements.Count > 4);
    }

    [Fact]
    public async Task Bytes_scanned_are_those_of_the_runs_the_view_reads()
    {
        using var client = fixture.Client();
        var result = await fixture.Runner(client).RunAsync("SELECT count(*) AS n FROM results", CancellationToken.None);
        var expected = Directory.EnumerateFiles(fixture.Store.Root, "*.parquet", SearchOption.AllDirectories)
            .Where(f => Path.GetRelativePath(fixture.Store.Root, f).Contains("/compacted/results/", StringComparison.Ordinal))
            .Sum(f => new FileInfo(f).Length);
        Assert.Equal(25L, result.Rows[0][0]);
        Assert.True(expected > 0);
        Assert.Equal(expected, result.BytesScanned);
    }

    private static string Csv(IReadOnlyList<string> columns, IReadOnlyList<object?[]> rows)
    {
        using var writer = new StringWriter();
        new QueryTable(columns, rows).WriteCsv(writer);
        return writer.ToString();
    }
}
