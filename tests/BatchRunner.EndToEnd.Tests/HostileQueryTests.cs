using System.Security.Cryptography;
using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary>
/// Queries written to escape <c>batchrunner query</c>: each gets its exact exit code and message, and afterwards the
/// store is as it was (its state database byte for byte, no file added anywhere it could write, still queryable).
/// </summary>
public sealed class HostileQueryTests : IClassFixture<HostileQueryTests.Store>
{
    private readonly Store _store;

    public HostileQueryTests(Store store) => _store = store;

    /// <summary>One store for every case, with a finished run in it: a case that changed it would fail the ones after it too.</summary>
    public sealed class Store : IAsyncLifetime
    {
        public Cli Cli { get; } = new();

        public string Outside { get; } = Directory.CreateTempSubdirectory("batchrunner-outside-").FullName;

        public async Task InitializeAsync()
        {
            var spec = Cli.WriteSpec("steady.yaml", """
                apiVersion: batchrunner.io/v1alpha1
                kind: BatchJob
                metadata: {name: steady}
                spec:
                  command: ["/bin/sh", "-c", "echo \"{\\\"mean\\\": $BATCHRUNNER_INDEX}\" > $BATCHRUNNER_OUTPUT_DIR/r.jsonl"]
                  completions: 3
                """);
            Assert.Equal(0, (await Cli.RunAsync("run", spec)).ExitCode);
        }

        public Task DisposeAsync()
        {
            Cli.Dispose();
            Directory.Delete(Outside, recursive: true);
            return Task.CompletedTask;
        }
    }

    public static TheoryData<string, string, int, string> Refused => new()
    {
        // case, SQL ({store} and {outside} are filled in), exit code, what stderr says
        { "reading /etc/passwd as CSV", "SELECT * FROM read_csv('/etc/passwd')", 2, "Permission Error" },
        { "reading a file as text", "SELECT * FROM read_text('/etc/hostname')", 2, "Permission Error" },
        { "reading a file as blob", "SELECT * FROM read_blob('/etc/hostname')", 2, "Permission Error" },
        { "listing a folder", "SELECT * FROM glob('/etc/*')", 2, "Permission Error" },
        { "climbing out of the store", "SELECT * FROM read_text('{store}/../../etc/hostname')", 2, "Permission Error" },
        { "reading over HTTP", "SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')", 2, "Permission Error" },
        { "COPY over the state database", "COPY (SELECT 1) TO '{store}/state.db'", 2, "COPY is not allowed" },
        { "COPY out of the store", "COPY results TO '{outside}/stolen.csv'", 2, "Permission Error" },
        { "EXPORT DATABASE", "EXPORT DATABASE '{outside}/export'", 2, "Permission Error" },
        { "ATTACH a database", "ATTACH '{outside}/evil.db' AS evil", 2, "ATTACH is not allowed" },
        { "DETACH", "DETACH memory", 2, "" },
        { "INSTALL an extension", "INSTALL httpfs", 2, "is not allowed" },
        { "LOAD an extension", "LOAD httpfs", 2, "is not allowed" },
        { "SET to open file access", "SET enable_external_access = true", 2, "SET is not allowed" },
        { "SET to unlock the configuration", "SET lock_configuration = false", 2, "SET is not allowed" },
        { "RESET", "RESET allowed_directories", 2, "is not allowed" },
        { "PRAGMA that writes", "PRAGMA enable_profiling = 'json'", 2, "is not allowed" },
        { "CREATE TABLE", "CREATE TABLE t AS SELECT 1", 2, "CREATE is not allowed" },
        { "CREATE a macro", "CREATE MACRO m(x) AS x", 2, "CREATE is not allowed" },
        { "DROP the results view", "DROP VIEW results", 2, "DROP is not allowed" },
        { "INSERT", "INSERT INTO results VALUES (1)", 2, "" },
        { "CALL a procedure", "CALL pragma_version()", 2, "is not allowed" },
        { "a transaction", "BEGIN TRANSACTION", 2, "TRANSACTION is not allowed" },
        { "two statements, the second writing", "SELECT 1; COPY (SELECT 1) TO '{outside}/x.csv'", 2, "the query has 2 statements" },
        { "an empty query", "", 2, "the query is empty" },
        { "a comment and nothing else", "-- nothing", 2, "the query is empty" },
        { "not SQL", "SELEC 1", 2, "syntax error" },
        { "COPY inside the query table function", "SELECT * FROM query('COPY (SELECT 1) TO ''{outside}/q.csv''')", 2, "" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task A_query_that_would_reach_outside_the_stores_tables_is_refused_and_changes_nothing(string @case, string sql, int exitCode, string says)
    {
        var before = Snapshot();
        var query = sql.Replace("{store}", _store.Cli.Store, StringComparison.Ordinal).Replace("{outside}", _store.Outside, StringComparison.Ordinal);

        var result = await _store.Cli.RunAsync("query", query);

        Assert.True(exitCode == result.ExitCode, $"{@case}: {result}");
        Assert.True(result.Stderr.Contains(says, StringComparison.Ordinal), $"{@case}: {result}");
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_store.Outside));
        Assert.Equal("steady  default", (await _store.Cli.RunAsync("status")).Stdout.Split('\n')[1][..15]);
        Assert.Equal(0, (await _store.Cli.RunAsync("query", "SELECT count(*) FROM results")).ExitCode);
    }

    public static TheoryData<string, string, string> Allowed => new()
    {
        { "DESCRIBE", "DESCRIBE results", "mean" },
        { "SUMMARIZE", "SUMMARIZE SELECT mean FROM results", "mean" },
        { "SHOW TABLES", "SHOW TABLES", "results" },
        { "EXPLAIN", "EXPLAIN SELECT * FROM results", "physical_plan" },
        { "a CTE", "WITH m AS (SELECT max(mean) AS top FROM results) SELECT top FROM m", "2" },
        { "FROM first", "FROM results SELECT count(*) AS n", "3" },
        { "a PRAGMA function", "PRAGMA version", "library_version" },
        { "a trailing semicolon and comment", "SELECT 42 AS answer; -- done", "42" },
        { "a query ending in a comment", "SELECT [1, 2] AS l -- a list", "[1,2]" },
        { "reading the store's own Parquet", "SELECT count(*) AS n FROM read_parquet('{store}/batchjob=steady/*/compacted/results/*.parquet')", "3" },
    };

    [Theory]
    [MemberData(nameof(Allowed))]
    public async Task A_query_that_only_reads_runs(string @case, string sql, string shows)
    {
        var before = Snapshot();

        var result = await _store.Cli.RunAsync("query", sql.Replace("{store}", _store.Cli.Store, StringComparison.Ordinal));

        Assert.True(result.ExitCode == 0, $"{@case}: {result}");
        Assert.Contains(shows, result.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot());
    }

    [Fact]
    public async Task A_query_past_its_timeout_is_interrupted_and_exits_124()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var result = await _store.Cli.RunAsync("query", "--timeout", "1", "SELECT count(*) FROM range(100000000000) a, range(100) b");

        Assert.Equal(124, result.ExitCode);
        Assert.Contains("stopped after 1 s (--timeout)", result.Stderr, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task An_enormous_answer_is_cut_at_max_rows_with_a_warning()
    {
        var result = await _store.Cli.RunAsync("query", "--max-rows", "10", "--format", "csv", "SELECT * FROM range(1000000)");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(11, result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("the answer has more than 10 rows", result.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--timeout", "0", "--timeout must be between 0 and")]
    [InlineData("--timeout", "-5", "--timeout must be between 0 and")]
    [InlineData("--max-rows", "0", "--max-rows must be at least 1")]
    public async Task Bad_limits_are_refused_naming_the_option(string option, string value, string says)
    {
        var result = await _store.Cli.RunAsync("query", option, value, "SELECT 1");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(says, result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ctrl_c_interrupts_a_running_query_at_once()
    {
        using var process = _store.Cli.Start("query", "SELECT count(*) FROM range(100000000000) a, range(100) b");
        await Task.Delay(TimeSpan.FromSeconds(2));
        var clock = System.Diagnostics.Stopwatch.StartNew();

        using (var kill = System.Diagnostics.Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await process.WaitForExitAsync();
        Assert.Equal(130, process.ExitCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"stopped {clock.Elapsed} after Ctrl-C");
    }

    /// <summary>Every file of the store with its content's hash: the state database, manifests, ledger rows, outputs.</summary>
    private List<string> Snapshot() =>
        Directory.EnumerateFiles(_store.Cli.Store, "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/.locks/", StringComparison.Ordinal) && !f.EndsWith("-wal", StringComparison.Ordinal) && !f.EndsWith("-shm", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(f => $"{Path.GetRelativePath(_store.Cli.Store, f)} {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))}")
            .ToList();
}
