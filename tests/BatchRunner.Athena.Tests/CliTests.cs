using System.CommandLine;
using BatchRunner.Aws.Athena;
using BatchRunner.Aws.Protocol;
using BatchRunner.Cli;
using BatchRunner.Cli.Commands;

namespace BatchRunner.Athena.Tests;

/// <summary><c>batchrunner query --engine athena|duckdb</c> and <c>batchrunner athena ddl|setup</c>, against the stub.</summary>
public sealed class CliTests(AthenaFixture fixture) : IClassFixture<AthenaFixture>
{
    private Task<(int Exit, string Out, string Err)> RunAsync(params string[] args) => RunAsync(args, CancellationToken.None);

    private async Task<(int Exit, string Out, string Err)> RunAsync(string[] args, CancellationToken cancellation)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        IAthenaApi Connect(AthenaOptions options) => new AthenaApiClient(new AwsJsonClient(
            new AwsServiceOptions
            {
                ServiceId = "athena", SigningName = "athena", Region = options.Region, EndpointUrl = options.EndpointUrl,
                RetryBaseDelay = TimeSpan.FromMilliseconds(5), MaxAttempts = 8,
            },
            AwsJsonClient.PascalCaseJson(), credentials: AthenaFixture.Credentials));
        var root = new RootCommand { CliApplication.StoreOption, QueryCommand.Create(stdout, stderr, Connect), AthenaCommand.Create(stdout, stderr, Connect) };
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, cancellation);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private string[] Athena => ["--engine", "athena", "--endpoint-url", fixture.Stub.Url.ToString(), "--region", "eu-west-1", "--output-location", "s3://query-results/cli/"];

    [Theory]
    [InlineData("csv")]
    [InlineData("json")]
    [InlineData("table")]
    public async Task Both_engines_print_the_same_answer(string format)
    {
        // Not "servers": the local engine's compacted view types it as text here (see ParityTests).
        const string sql = """SELECT batchjob, run, "index", arrival_rate, mean_wait, served, label FROM results WHERE batchjob = 'mmc-sweep' ORDER BY batchjob, run, "index", mean_wait""";
        var duck = await RunAsync("query", sql, "--format", format, "--store", fixture.Store.Root);
        var athena = await RunAsync(["query", sql, "--format", format, .. Athena]);

        Assert.Equal((0, 0), (duck.Exit, athena.Exit));
        Assert.Contains("mmc-sweep", duck.Out, StringComparison.Ordinal);
        Assert.Equal(duck.Out, athena.Out);
        Assert.Matches(@"\d+(\.\d+)? (B|KB) scanned by Athena, query [0-9a-f-]{36}", athena.Err);
    }

    [Fact]
    public async Task Duckdb_is_the_default_engine()
    {
        var (exit, output, err) = await RunAsync("query", "SELECT count(*) AS n FROM indexes", "--format", "csv", "--store", fixture.Store.Root);
        Assert.Equal((0, "n\n24\n", ""), (exit, output.ReplaceLineEndings("\n"), err));
    }

    [Fact]
    public async Task Ctrl_C_stops_the_Athena_query_and_exits_130()
    {
        var before = fixture.Stub.Stopped.ToHashSet();
        fixture.Stub.QueryDelay = TimeSpan.FromSeconds(20);
        try
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            var (exit, output, err) = await RunAsync(["query", "SELECT count(*) FROM results", .. Athena], cancel.Token);
            Assert.Equal((130, ""), (exit, output));
            Assert.Equal("query: cancelled; the Athena query was stopped\n", err.ReplaceLineEndings("\n"));
        }
        finally
        {
            fixture.Stub.QueryDelay = TimeSpan.FromMilliseconds(30);
        }

        Assert.Single(fixture.Stub.Stopped.Except(before));
    }

    [Fact]
    public async Task A_query_Athena_fails_exits_2_with_its_reason()
    {
        var (exit, _, err) = await RunAsync(["query", "SELECT nope FROM results", .. Athena]);
        Assert.Equal(2, exit);
        Assert.Matches(@"^query: Athena failed query [0-9a-f-]{36}: COLUMN_NOT_FOUND: ", err);
    }

    [Theory]
    [InlineData("--workgroup", "not a workgroup", "BatchRunner:Athena:WorkGroup: must be 1 to 128 letters, digits, '.', '_' or '-', got 'not a workgroup'")]
    [InlineData("--output-location", "https://bucket/x", "BatchRunner:Athena:OutputLocation: must be s3://bucket/prefix/, got 'https://bucket/x'")]
    [InlineData("--database", "Bad-Db", "BatchRunner:Athena:Database: must be 1 to 255 lower-case letters, digits and _, got 'Bad-Db'")]
    [InlineData("--region", "moon", "BatchRunner:Athena:Region: not a region name such as eu-west-1, got 'moon'")]
    public async Task Settings_that_cannot_work_are_refused_naming_the_setting(string option, string value, string message)
    {
        var given = Athena.Chunk(2).Where(pair => pair[0] != option).SelectMany(pair => pair);
        var (exit, _, err) = await RunAsync(["query", "SELECT 1", .. given, option, value]);
        Assert.Equal(2, exit);
        Assert.Equal($"query: {message}\n", err.ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task Athena_ddl_prints_the_statements_for_the_stores_compacted_runs()
    {
        var (exit, output, err) = await RunAsync("athena", "ddl", "--results", fixture.Store.StoreUri, "--schemas-from", fixture.Store.Root);
        Assert.Equal((0, ""), (exit, err));
        Assert.Equal(DdlGoldenTests.Render(fixture.Statements), output);
        Assert.Matches("CREATE EXTERNAL TABLE `results_pi_estimate_[0-9a-f]{6}`", output);
    }

    [Fact]
    public async Task Athena_ddl_needs_an_s3_location()
    {
        Assert.Equal(2, (await RunAsync("athena", "ddl", "--schemas-from", fixture.Store.Root)).Exit);
        var (exit, _, err) = await RunAsync("athena", "ddl", "--results", "/tmp/local", "--schemas-from", fixture.Store.Root);
        Assert.Equal(2, exit);
        Assert.Contains("not an s3://bucket/prefix URI", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Athena_setup_runs_every_statement_again_without_harm()
    {
        var (exit, output, err) = await RunAsync(
            "athena", "setup", "--results", fixture.Store.StoreUri, "--schemas-from", fixture.Store.Root,
            "--endpoint-url", fixture.Stub.Url.ToString(), "--region", "eu-west-1", "--output-location", "s3://query-results/cli/");
        Assert.Equal((0, ""), (exit, err));
        Assert.Equal(fixture.Statements.Select(s => s.Purpose), output.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n'));

        var count = await RunAsync(["query", "SELECT count(*) AS n FROM indexes", "--format", "csv", .. Athena]);
        Assert.Equal("n\n24\n", count.Out.ReplaceLineEndings("\n"));
    }
}
