using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Athena.Tests;

/// <summary>
/// <c>batchrunner athena ddl|setup</c> and <c>batchrunner query --engine athena</c> run as the <c>./batchrunner</c>
/// binary (Native AOT, as users run it) against the stub Athena: the same answers as <see cref="CliTests"/> gets in
/// process, since reflection the trimmer removed would fail only here, at run time.
/// </summary>
public sealed class NativeCliTests(AthenaFixture fixture) : IClassFixture<AthenaFixture>
{
    private const string SecretKey = "native-athena-test-secret";

    /// <summary>Credentials from the environment, as a deployment gives them; nothing read from a profile or instance metadata.</summary>
    private static Dictionary<string, string> Environment() => new(StringComparer.Ordinal)
    {
        ["AWS_ACCESS_KEY_ID"] = "AKIDNATIVEATHENA",
        ["AWS_SECRET_ACCESS_KEY"] = SecretKey,
        ["AWS_EC2_METADATA_DISABLED"] = "true",
        ["AWS_CONFIG_FILE"] = "/nonexistent/batchrunner-test/config",
        ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/batchrunner-test/credentials",
    };

    private string[] Athena => ["--engine", "athena", "--endpoint-url", fixture.Stub.Url.ToString(), "--region", "eu-west-1", "--output-location", "s3://query-results/native/"];

    private static Task<CliProcess.Result> RunAsync(params string[] arguments) => CliProcess.RunAsync(arguments, Environment());

    [Theory]
    [InlineData("csv")]
    [InlineData("json")]
    [InlineData("table")]
    public async Task Query_with_athena_prints_what_duckdb_prints_over_the_same_store(string format)
    {
        const string sql = """SELECT batchjob, run, "index", arrival_rate, mean_wait, served, label FROM results WHERE batchjob = 'mmc-sweep' ORDER BY batchjob, run, "index", mean_wait""";

        var duck = await RunAsync("query", sql, "--format", format, "--store", fixture.Store.Root);
        var athena = await RunAsync(["query", sql, "--format", format, .. Athena]);

        Assert.True(duck.ExitCode == 0, duck.ToString());
        Assert.True(athena.ExitCode == 0, athena.ToString());
        Assert.Contains("mmc-sweep", duck.Stdout, StringComparison.Ordinal);
        Assert.Equal(duck.Stdout, athena.Stdout);
        Assert.Matches(@"\d+(\.\d+)? (B|KB) scanned by Athena, query [0-9a-f-]{36}", athena.Stderr);
        Assert.DoesNotContain(SecretKey, athena.Stdout + athena.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Athena_ddl_prints_the_statements_for_the_stores_compacted_runs()
    {
        var result = await RunAsync("athena", "ddl", "--results", fixture.Store.StoreUri, "--schemas-from", fixture.Store.Root);

        Assert.True(result.ExitCode == 0 && result.Stderr.Length == 0, result.ToString());
        Assert.Equal(DdlGoldenTests.Render(fixture.Statements), result.Stdout);
        Assert.Matches("CREATE EXTERNAL TABLE `results_pi_estimate_[0-9a-f]{6}`", result.Stdout);
    }

    [Fact]
    public async Task Athena_setup_configured_by_the_environment_runs_every_statement_and_the_tables_answer()
    {
        var environment = Environment();
        environment["BatchRunner__Athena__EndpointUrl"] = fixture.Stub.Url.ToString();
        environment["BatchRunner__Athena__Region"] = "eu-west-1";
        environment["BatchRunner__Athena__OutputLocation"] = "s3://query-results/native-setup/";
        environment["BatchRunner__Results__Uri"] = fixture.Store.StoreUri;

        var setup = await CliProcess.RunAsync(["athena", "setup", "--schemas-from", fixture.Store.Root], environment);

        Assert.True(setup.ExitCode == 0, setup.ToString());
        Assert.Equal(fixture.Statements.Select(s => s.Purpose), setup.Stdout.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n'));

        var count = await CliProcess.RunAsync(["query", "--engine", "athena", "--format", "csv", "SELECT count(*) AS n FROM indexes"], environment);

        Assert.True(count.ExitCode == 0, count.ToString());
        Assert.Equal("n\n24\n", count.Stdout.ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task A_query_athena_fails_exits_2_with_its_reason()
    {
        var result = await RunAsync(["query", "SELECT nope FROM results", .. Athena]);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Matches(@"^query: Athena failed query [0-9a-f-]{36}: COLUMN_NOT_FOUND: ", result.Stderr);
    }

    [Fact]
    public async Task Stopping_the_cli_stops_the_athena_query_and_exits_130()
    {
        var stoppedBefore = fixture.Stub.Stopped.ToHashSet();
        var startsBefore = fixture.Stub.Calls.Count(c => c.Operation == "StartQueryExecution");
        fixture.Stub.QueryDelay = TimeSpan.FromSeconds(60);
        try
        {
            using var running = CliProcess.Start(["query", "SELECT count(*) FROM results", .. Athena], Environment());
            await running.WaitUntilAsync(
                () => fixture.Stub.Calls.Any(c => c.Operation == "GetQueryExecution") && fixture.Stub.Calls.Count(c => c.Operation == "StartQueryExecution") > startsBefore,
                "the query was started and polled");
            running.Terminate();
            var result = await running.WaitAsync();

            Assert.True(result.ExitCode == 130 && result.Stdout.Length == 0, result.ToString());
            // The log line of the stop, then the command's own last word.
            Assert.Matches(@"INF Stopped Athena query [0-9a-f-]{36}", result.Stderr);
            Assert.EndsWith("\nquery: cancelled; the Athena query was stopped\n", result.Stderr.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        }
        finally
        {
            fixture.Stub.QueryDelay = TimeSpan.FromMilliseconds(30);
        }

        Assert.Single(fixture.Stub.Stopped.Except(stoppedBefore));
    }
}
