using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Amazon.Runtime;
using BatchRunner.Aws.Protocol;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace BatchRunner.Aws.Tests.Protocol;

/// <summary>The JSON protocols, errors and retries of <see cref="AwsJsonClient"/> against a stub endpoint on 127.0.0.1.</summary>
public sealed class AwsJsonClientTests
{
    private const string SecretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    private const string SessionToken = "IQoJb3JpZ2luX2VjEXAMPLE-SESSION-TOKEN";

    private sealed record Item(string Name, int Size);

    private sealed record Answer(string JobId, List<Item>? Items);

    private static AwsJsonClient Client(Uri url, ILogger? log = null, int maxAttempts = 4, JsonSerializerOptions? json = null) => new(
        new AwsServiceOptions
        {
            ServiceId = "batch", SigningName = "batch", Region = "us-east-1", EndpointUrl = url.ToString(), MaxAttempts = maxAttempts,
            RetryBaseDelay = TimeSpan.FromMilliseconds(1), MaxRetryDelay = TimeSpan.FromMilliseconds(5), AttemptTimeout = TimeSpan.FromSeconds(5),
        },
        json ?? TestWireJson.CamelCase(),
        credentials: new StaticAwsCredentialSource(new ImmutableCredentials("AKIDEXAMPLE", SecretKey, SessionToken)),
        log: log is null ? null : Microsoft.Extensions.Logging.LoggerFactoryExtensions.CreateLogger<AwsJsonClient>(new Serilog.Extensions.Logging.SerilogLoggerFactory(log)),
        jitter: new Random(7));

    [Fact]
    public async Task Rest_json_sends_camel_case_members_to_the_path_and_reads_the_answer()
    {
        await using var server = await StubHttpServer.StartAsync(_ => StubAnswer.Ok("""{"jobId":"j-1","items":[{"name":"a","size":2}],"extra":true}"""));
        using var client = Client(server.Url);

        var answer = await client.SendRestJsonAsync<Item, Answer>(HttpMethod.Post, "/v1/submitjob", new Item("sweep", 3), default);

        Assert.Equal(new Item("a", 2), Assert.Single(answer.Items!));
        Assert.Equal("j-1", answer.JobId);
        var received = Assert.Single(server.Requests);
        Assert.Equal(("POST", "/v1/submitjob"), (received.Method, received.PathAndQuery));
        Assert.Equal("""{"name":"sweep","size":3}""", received.Body);
        Assert.StartsWith("application/json", received.Header("Content-Type"), StringComparison.Ordinal);
        Assert.Null(received.Header("X-Amz-Target"));
    }

    [Fact]
    public async Task Json11_posts_to_the_root_with_its_target_and_pascal_case_members()
    {
        await using var server = await StubHttpServer.StartAsync(_ => StubAnswer.Ok("""{"JobId":"q-1"}"""));
        using var client = Client(server.Url, json: TestWireJson.PascalCase());

        var answer = await client.SendJson11Async<Item, Answer>("AmazonAthena.StartQueryExecution", new Item("q", 1), default);

        Assert.Equal("q-1", answer.JobId);
        var received = Assert.Single(server.Requests);
        Assert.Equal(("POST", "/"), (received.Method, received.PathAndQuery));
        Assert.Equal("AmazonAthena.StartQueryExecution", received.Header("X-Amz-Target"));
        Assert.Equal("application/x-amz-json-1.1", received.Header("Content-Type"));
        Assert.Equal("""{"Name":"q","Size":1}""", received.Body);
    }

    [Fact]
    public async Task A_client_error_is_not_retried_and_carries_code_message_status_and_request_id()
    {
        await using var server = await StubHttpServer.StartAsync(_ => new StubAnswer(
            400,
            """{"message":"Job Queue arn:aws:batch:us-east-1:1:job-queue/nope does not exist"}""",
            new Dictionary<string, string>
            {
                ["x-amzn-ErrorType"] = "ClientException:http://internal.amazon.com/coral/com.amazonaws.batch.v20160810/",
                ["x-amzn-RequestId"] = "req-42",
            }));
        using var client = Client(server.Url);

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => client.SendRestJsonAsync<Item, Answer>(HttpMethod.Post, "/v1/submitjob", new Item("a", 1), default));

        Assert.Equal("ClientException", e.ErrorCode);
        Assert.Equal("Job Queue arn:aws:batch:us-east-1:1:job-queue/nope does not exist", e.ServiceMessage);
        Assert.Equal(400, e.StatusCode);
        Assert.Equal("req-42", e.RequestId);
        Assert.False(e.IsRetryable);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task The_code_of_a_json11_error_comes_from_its_type_without_the_namespace()
    {
        await using var server = await StubHttpServer.StartAsync(_ => new StubAnswer(400, """{"__type":"com.amazonaws.athena#InvalidRequestException","Message":"bad SQL"}"""));
        using var client = Client(server.Url);

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => client.SendJson11Async<Item, Answer>("AmazonAthena.StartQueryExecution", new Item("a", 1), default));

        Assert.Equal(("InvalidRequestException", "bad SQL"), (e.ErrorCode, e.ServiceMessage));
    }

    [Theory]
    [InlineData(429, "TooManyRequestsException", "Too Many Requests")]
    [InlineData(400, "ThrottlingException", "Rate exceeded")]
    [InlineData(400, "ClientException", "Too Many Requests.")]
    [InlineData(500, "ServerException", "internal error")]
    [InlineData(503, "ServiceUnavailable", "try later")]
    public async Task Throttling_and_server_errors_are_retried_each_attempt_signed_afresh(int status, string code, string message)
    {
        var calls = 0;
        await using var server = await StubHttpServer.StartAsync(_ =>
            Interlocked.Increment(ref calls) <= 2 ? StubAnswer.Error(status, code, message) : StubAnswer.Ok("""{"jobId":"j"}"""));
        using var client = Client(server.Url);

        var answer = await client.SendRestJsonAsync<Item, Answer>(HttpMethod.Post, "/v1/submitjob", new Item("a", 1), default);

        Assert.Equal("j", answer.JobId);
        Assert.Equal(3, server.Requests.Count);
        Assert.All(server.Requests, r => Assert.StartsWith("AWS4-HMAC-SHA256", r.Header("Authorization"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Retries_end_after_the_last_attempt_with_the_last_error()
    {
        await using var server = await StubHttpServer.StartAsync(_ => StubAnswer.Error(429, "TooManyRequestsException", "slow down"));
        using var client = Client(server.Url, maxAttempts: 3);

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => client.SendRestJsonAsync<Item, Answer>(HttpMethod.Post, "/v1/listjobs", new Item("a", 1), default));

        Assert.True(e.IsThrottling);
        Assert.Equal(3, server.Requests.Count);
    }

    [Fact]
    public async Task An_unreachable_endpoint_is_a_retryable_network_error()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var client = Client(new Uri($"http://127.0.0.1:{port}"), maxAttempts: 2);

        var e = await Assert.ThrowsAsync<AwsServiceException>(() => client.SendRestJsonAsync<Item, Answer>(HttpMethod.Post, "/v1/listjobs", new Item("a", 1), default));

        Assert.Equal(("NetworkError", 0), (e.ErrorCode, e.StatusCode));
        Assert.True(e.IsRetryable);
    }

    [Fact]
    public async Task A_cancelled_call_ends_without_retrying()
    {
        var gate = new TaskCompletionSource();
        await using var server = await StubHttpServer.StartAsync(async _ =>
        {
            await gate.Task;
            return StubAnswer.Ok("{}");
        });
        using var client = Client(server.Url);
        using var cancel = new CancellationTokenSource();

        var call = client.SendRestJsonAsync<Item, Answer>(HttpMethod.Post, "/v1/listjobs", new Item("a", 1), cancel.Token);
        await Support.Eventually.WaitAsync(() => !server.Requests.IsEmpty, "the request arrived");
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        gate.SetResult();
        Assert.Single(server.Requests);
    }

    [Fact]
    public void Backoff_grows_from_its_base_stays_under_its_cap_and_is_longer_when_throttled()
    {
        using var client = new AwsJsonClient(
            new AwsServiceOptions { ServiceId = "batch", SigningName = "batch", Region = "us-east-1", RetryBaseDelay = TimeSpan.FromMilliseconds(100), MaxRetryDelay = TimeSpan.FromSeconds(2) },
            TestWireJson.CamelCase(), credentials: new StaticAwsCredentialSource(new ImmutableCredentials("a", "b", null)), jitter: new Random(1));

        var first = Enumerable.Range(0, 200).Select(_ => client.RetryDelay(1, throttled: false)).ToList();
        var fourth = Enumerable.Range(0, 200).Select(_ => client.RetryDelay(4, throttled: false)).ToList();
        var throttled = Enumerable.Range(0, 200).Select(_ => client.RetryDelay(1, throttled: true)).ToList();
        var late = Enumerable.Range(0, 200).Select(_ => client.RetryDelay(20, throttled: true)).ToList();

        Assert.All(first, d => Assert.InRange(d.TotalMilliseconds, 0, 100));
        Assert.All(fourth, d => Assert.InRange(d.TotalMilliseconds, 0, 800));
        Assert.True(fourth.Max() > TimeSpan.FromMilliseconds(400), "the ceiling doubles per attempt");
        Assert.True(throttled.Max() > TimeSpan.FromMilliseconds(100), "throttling waits longer");
        Assert.All(late, d => Assert.True(d <= TimeSpan.FromSeconds(2)));
        Assert.True(first.Distinct().Count() > 100, "jitter spreads the waits");
    }

    [Fact]
    public async Task Log_lines_of_a_retried_call_hold_no_secret()
    {
        var events = new List<LogEvent>();
        using var log = new LoggerConfiguration().MinimumLevel.Verbose().WriteTo.Sink(new ListSink(events)).CreateLogger();
        var calls = 0;
        await using var server = await StubHttpServer.StartAsync(_ =>
            Interlocked.Increment(ref calls) == 1 ? StubAnswer.Error(500, "ServerException", "boom") : StubAnswer.Ok("{}"));
        using var client = Client(server.Url, log);

        await client.SendRestJsonAsync<Item, Answer>(HttpMethod.Post, "/v1/submitjob", new Item("a", 1), default);

        Assert.Contains(events, e => e.Level == LogEventLevel.Warning && e.RenderMessage().Contains("ServerException", StringComparison.Ordinal));
        var text = string.Join('\n', events.Select(e => e.RenderMessage() + string.Join(',', e.Properties.Values)));
        Assert.DoesNotContain(SecretKey, text, StringComparison.Ordinal);
        Assert.DoesNotContain(SessionToken, text, StringComparison.Ordinal);
        Assert.DoesNotContain("Signature=", text, StringComparison.Ordinal);
    }

    private sealed class ListSink(List<LogEvent> events) : ILogEventSink
    {
        public void Emit(LogEvent logEvent)
        {
            lock (events)
            {
                events.Add(logEvent);
            }
        }
    }
}
