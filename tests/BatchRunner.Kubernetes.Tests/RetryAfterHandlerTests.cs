using System.Net;
using System.Net.Http.Headers;
using System.Text;
using BatchRunner.Kubernetes.Client;
using Microsoft.Extensions.Time.Testing;

namespace BatchRunner.Kubernetes.Tests;

public sealed class RetryAfterHandlerTests
{
    [Theory]
    [InlineData(429, "2", 2.0)]
    [InlineData(429, null, 1.0)]
    [InlineData(429, "600", 10.0)]
    [InlineData(503, "3", 3.0)]
    [InlineData(500, "1", 1.0)]
    [InlineData(503, null, null)]
    [InlineData(500, null, null)]
    [InlineData(409, "1", null)]
    [InlineData(200, "1", null)]
    public void The_wait_is_what_the_server_asked_for_a_429_or_a_5xx_that_says_when_within_ten_seconds(int status, string? retryAfter, double? seconds)
    {
        using var response = new HttpResponseMessage((HttpStatusCode)status);
        if (retryAfter is not null)
        {
            response.Headers.RetryAfter = RetryConditionHeaderValue.Parse(retryAfter);
        }

        Assert.Equal(seconds is { } s ? TimeSpan.FromSeconds(s) : null, RetryAfterHandler.WaitOf(response));
    }

    [Fact]
    public async Task A_call_answered_429_is_sent_again_with_the_same_body_after_the_wait_and_its_success_returned()
    {
        var time = new FakeTimeProvider();
        var inner = new Scripted(HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests, HttpStatusCode.Created);
        using var client = new HttpMessageInvoker(new RetryAfterHandler(time) { InnerHandler = inner });
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://api.example:6443/apis/batch/v1/namespaces/a/jobs") { Content = new StringContent("""{"kind":"Job"}""", Encoding.UTF8, "application/json") };

        using var response = await SendWhileTimePassesAsync(client, request, time);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(["""{"kind":"Job"}""", """{"kind":"Job"}""", """{"kind":"Job"}"""], inner.Bodies);
    }

    [Fact]
    public async Task A_server_that_keeps_answering_429_gets_its_answer_back_after_ten_retries()
    {
        var time = new FakeTimeProvider();
        var inner = new Scripted([.. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 20)]);
        using var client = new HttpMessageInvoker(new RetryAfterHandler(time) { InnerHandler = inner });
        using var request = new HttpRequestMessage(HttpMethod.Get, "https://api.example:6443/api/v1/namespaces/a/pods");

        using var response = await SendWhileTimePassesAsync(client, request, time);
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(RetryAfterHandler.MostRetries + 1, inner.Bodies.Count);
    }

    [Fact]
    public async Task A_cancelled_caller_stops_waiting_at_once()
    {
        var inner = new Scripted([.. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 20)]);
        using var client = new HttpMessageInvoker(new RetryAfterHandler(new FakeTimeProvider()) { InnerHandler = inner });
        using var request = new HttpRequestMessage(HttpMethod.Get, "https://api.example:6443/api/v1/namespaces/a/pods");
        using var cancel = new CancellationTokenSource();

        var sending = client.SendAsync(request, cancel.Token);
        await Task.Delay(20);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>Sends, moving the clock on a second at a time until the answer comes (each wait is the server's).</summary>
    private static async Task<HttpResponseMessage> SendWhileTimePassesAsync(HttpMessageInvoker client, HttpRequestMessage request, FakeTimeProvider time)
    {
        var sending = client.SendAsync(request, CancellationToken.None);
        for (var i = 0; i < 200 && !sending.IsCompleted; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(10);
        }

        return await sending.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Answers with the given statuses in turn (a 429 without Retry-After), noting each body it got.</summary>
    private sealed class Scripted(params HttpStatusCode[] statuses) : HttpMessageHandler
    {
        private int _next;

        public List<string> Bodies { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Bodies.Add(request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken));
            return new HttpResponseMessage(statuses[Math.Min(_next++, statuses.Length - 1)]) { RequestMessage = request };
        }
    }
}
