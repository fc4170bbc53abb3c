using BatchRunner.Aws.Athena;
using BatchRunner.Aws.Protocol;
using BatchRunner.Aws.Tests.Protocol;

namespace BatchRunner.Athena.Tests;

/// <summary>The query runner against the stub Athena: states, reasons, pages, stopping, and botocore's model.</summary>
public sealed class AthenaClientTests(AthenaFixture fixture) : IClassFixture<AthenaFixture>
{
    [Fact]
    public async Task A_failed_query_surfaces_Athenas_reason()
    {
        using var client = fixture.Client();
        var e = await Assert.ThrowsAsync<AthenaQueryFailedException>(() =>
            fixture.Runner(client).RunAsync("SELECT no_such_column FROM results", CancellationToken.None));
        Assert.Equal("FAILED", e.State);
        Assert.StartsWith("COLUMN_NOT_FOUND: ", e.Reason, StringComparison.Ordinal);
        Assert.Contains("no_such_column", e.Reason, StringComparison.Ordinal);
        Assert.Equal(2, e.ErrorCategory);
    }

    [Fact]
    public async Task A_table_projected_by_injected_run_refuses_a_query_that_names_no_run()
    {
        using var client = fixture.Client();
        var runner = fixture.Runner(client);
        var e = await Assert.ThrowsAsync<AthenaQueryFailedException>(() => runner.RunAsync("SELECT count(*) FROM results_mmc_sweep", CancellationToken.None));
        Assert.StartsWith("CONSTRAINT_VIOLATION: For the injected projected partition column run", e.Reason, StringComparison.Ordinal);

        var named = await runner.RunAsync("SELECT count(*) AS n FROM results_mmc_sweep WHERE run = 'r00000000bbb'", CancellationToken.None);
        Assert.Equal(3L, Assert.Single(named.Rows)[0]);
    }

    [Fact]
    public async Task Athena_reads_each_run_through_the_table_of_its_schema()
    {
        using var client = fixture.Client();
        var runner = fixture.Runner(client);
        var tables = fixture.Statements.Where(s => s.Sql.StartsWith("CREATE EXTERNAL TABLE `results_pi_estimate_", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, tables.Count);
        var integers = tables.Single(t => t.Sql.Contains("`samples` bigint", StringComparison.Ordinal)).Purpose["table ".Length..];

        var read = await runner.RunAsync($"SELECT sum(samples) AS s FROM {integers} WHERE run = 'r00000000ccc'", CancellationToken.None);
        Assert.Equal(10000L, Assert.Single(read.Rows)[0]);
        // The other run's files hold doubles, which Athena will not read as bigint.
        var e = await Assert.ThrowsAsync<AthenaQueryFailedException>(() =>
            runner.RunAsync($"SELECT sum(samples) AS s FROM {integers} WHERE run = 'r00000000ddd'", CancellationToken.None));
        Assert.StartsWith("HIVE_BAD_DATA: Field samples's type DOUBLE", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Results_are_read_page_by_page_and_the_header_row_is_not_data()
    {
        using var client = fixture.Client();
        var before = fixture.Stub.Calls.Count(c => c.Operation == "GetQueryResults");
        var result = await fixture.Runner(client).RunAsync("SELECT range AS i, CAST(range AS VARCHAR) AS s FROM range(2500)", CancellationToken.None);

        Assert.Equal(["i", "s"], result.Columns);
        Assert.Equal(2500, result.Rows.Count);
        Assert.Equal(Enumerable.Range(0, 2500).Select(i => (object?)(long)i), result.Rows.Select(r => r[0]));
        Assert.Equal("2499", result.Rows[^1][1]);
        // 2,501 rows with the header, 1,000 a page; throttled calls are retried and counted too.
        Assert.True(fixture.Stub.Calls.Count(c => c.Operation == "GetQueryResults") - before >= 3);
    }

    [Fact]
    public async Task A_query_without_an_output_location_is_refused_unless_the_workgroup_has_one()
    {
        using var client = fixture.Client();
        var options = AthenaFixture.Options(fixture.Stub.Url) with { OutputLocation = null, WorkGroup = "analysts" };
        var e = await Assert.ThrowsAsync<AwsServiceException>(() => new AthenaQueryRunner(client, options).RunAsync("SELECT 1 AS one", CancellationToken.None));
        Assert.Equal("InvalidRequestException", e.ErrorCode);
        Assert.Contains("No output location provided", e.ServiceMessage, StringComparison.Ordinal);

        fixture.Stub.WorkGroupsWithOutput.Add("analysts");
        var result = await new AthenaQueryRunner(client, options).RunAsync("SELECT 1 AS one", CancellationToken.None);
        Assert.Equal(1L, Assert.Single(result.Rows)[0]);
    }

    [Fact]
    public async Task Cancelling_the_caller_stops_the_query_on_Athena()
    {
        using var client = fixture.Client();
        var before = fixture.Stub.Stopped.ToHashSet();
        fixture.Stub.QueryDelay = TimeSpan.FromSeconds(20);
        try
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fixture.Runner(client).RunAsync("SELECT count(*) FROM results", cancel.Token));
        }
        finally
        {
            fixture.Stub.QueryDelay = TimeSpan.FromMilliseconds(30);
        }

        var stopped = Assert.Single(fixture.Stub.Stopped.Except(before));
        var state = await client.GetQueryExecutionAsync(stopped, CancellationToken.None);
        Assert.Equal("CANCELLED", state.QueryExecution!.Status!.State);
    }

    [Fact]
    public async Task A_query_whose_start_was_cancelled_in_flight_is_found_by_its_token_and_stopped()
    {
        using var client = fixture.Client();
        var before = fixture.Stub.Stopped.ToHashSet();
        fixture.Stub.QueryDelay = TimeSpan.FromSeconds(20);
        try
        {
            using var cancel = new CancellationTokenSource();
            var api = new StartReachesAthenaThenCallerLeaves(client, cancel);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                new AthenaQueryRunner(api, AthenaFixture.Options(fixture.Stub.Url)).RunAsync("SELECT 1 AS one", cancel.Token));
            Assert.Equal(2, api.Starts);
        }
        finally
        {
            fixture.Stub.QueryDelay = TimeSpan.FromMilliseconds(30);
        }

        Assert.Single(fixture.Stub.Stopped.Except(before));
    }

    [Fact]
    public async Task Looks_at_a_running_query_that_fail_after_the_clients_retries_cost_a_poll_not_the_query()
    {
        using var client = fixture.Client();
        var api = new LooksFailFirst(client, failures: 3);

        var result = await new AthenaQueryRunner(api, AthenaFixture.Options(fixture.Stub.Url)).RunAsync("SELECT 1 AS one", CancellationToken.None);

        Assert.Equal(["one"], result.Columns);
        Assert.Equal(1L, Convert.ToInt64(Assert.Single(result.Rows)[0], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, api.FailuresLeft);
    }

    /// <summary>The first looks at a query's state fail as a client that ran out of retries says it (no answer at all).</summary>
    private sealed class LooksFailFirst(AthenaApiClient inner, int failures) : IAthenaApi
    {
        public int FailuresLeft { get; private set; } = failures;

        public Task<StartQueryExecutionResponse> StartQueryExecutionAsync(StartQueryExecutionRequest request, CancellationToken cancellation) =>
            inner.StartQueryExecutionAsync(request, cancellation);

        public Task<GetQueryExecutionResponse> GetQueryExecutionAsync(string queryExecutionId, CancellationToken cancellation)
        {
            if (FailuresLeft > 0)
            {
                FailuresLeft--;
                throw new BatchRunner.Aws.Protocol.AwsServiceException("athena", "NetworkError", "AmazonAthena.GetQueryExecution: Connection refused", 0, null);
            }

            return inner.GetQueryExecutionAsync(queryExecutionId, cancellation);
        }

        public Task<GetQueryResultsResponse> GetQueryResultsAsync(GetQueryResultsRequest request, CancellationToken cancellation) =>
            inner.GetQueryResultsAsync(request, cancellation);

        public Task StopQueryExecutionAsync(string queryExecutionId, CancellationToken cancellation) =>
            inner.StopQueryExecutionAsync(queryExecutionId, cancellation);
    }

    /// <summary>The first start reaches Athena, but its answer comes after the caller cancelled.</summary>
    private sealed class StartReachesAthenaThenCallerLeaves(AthenaApiClient inner, CancellationTokenSource caller) : IAthenaApi
    {
        public int Starts { get; private set; }

        public async Task<StartQueryExecutionResponse> StartQueryExecutionAsync(StartQueryExecutionRequest request, CancellationToken cancellation)
        {
            var answer = await inner.StartQueryExecutionAsync(request, CancellationToken.None);
            if (++Starts == 1)
            {
                await caller.CancelAsync();
                cancellation.ThrowIfCancellationRequested();
            }

            return answer;
        }

        public Task<GetQueryExecutionResponse> GetQueryExecutionAsync(string queryExecutionId, CancellationToken cancellation) =>
            inner.GetQueryExecutionAsync(queryExecutionId, cancellation);

        public Task<GetQueryResultsResponse> GetQueryResultsAsync(GetQueryResultsRequest request, CancellationToken cancellation) =>
            inner.GetQueryResultsAsync(request, cancellation);

        public Task StopQueryExecutionAsync(string queryExecutionId, CancellationToken cancellation) =>
            inner.StopQueryExecutionAsync(queryExecutionId, cancellation);
    }

    [Fact]
    public async Task A_retried_start_does_not_run_the_query_twice()
    {
        using var client = fixture.Client();
        var request = new StartQueryExecutionRequest
        {
            QueryString = "SELECT 1 AS one", ClientRequestToken = Guid.NewGuid().ToString("D"), WorkGroup = "primary",
            ResultConfiguration = new ResultConfiguration { OutputLocation = "s3://query-results/x/" },
        };
        var first = await client.StartQueryExecutionAsync(request, CancellationToken.None);
        var again = await client.StartQueryExecutionAsync(request, CancellationToken.None);
        Assert.Equal(first.QueryExecutionId, again.QueryExecutionId);
    }

    [Fact]
    public async Task Every_request_sent_is_valid_for_botocores_athena_model()
    {
        using var client = fixture.Client();
        var runner = fixture.Runner(client);
        await runner.RunAsync("SELECT range AS i FROM range(1200)", CancellationToken.None);
        await Assert.ThrowsAsync<AthenaQueryFailedException>(() => runner.RunAsync("SELEC nonsense", CancellationToken.None));
        fixture.Stub.QueryDelay = TimeSpan.FromSeconds(20);
        try
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => runner.RunAsync("SELECT 1 AS one", cancel.Token));
        }
        finally
        {
            fixture.Stub.QueryDelay = TimeSpan.FromMilliseconds(30);
        }

        var calls = fixture.Stub.Calls.ToList();
        Assert.Equal(
            ["GetQueryExecution", "GetQueryResults", "StartQueryExecution", "StopQueryExecution"],
            calls.Select(c => c.Operation).Distinct().Order(StringComparer.Ordinal));
        Assert.Contains(calls, c => c.Operation == "GetQueryResults" && c.Body.Contains("\"NextToken\"", StringComparison.Ordinal));
        var reports = await Botocore.ValidateAsync("athena", calls.Select(c => (c.Operation, c.Body)));
        Assert.All(reports, r =>
        {
            Assert.Equal("", r.Errors);
            Assert.Equal(("POST", "/"), (r.Method, r.RequestUri));
        });
    }
}
