using System.Diagnostics;
using System.Net;
using BatchRunner.Kubernetes.Client;

namespace BatchRunner.Kubernetes.Tests;

public sealed class RateLimitingHandlerTests
{
    private static HttpMessageInvoker Client(double qps, int burst) =>
        new(new RateLimitingHandler(qps, burst) { InnerHandler = new Answering() });

    private static HttpRequestMessage Get(string pathAndQuery) => new(HttpMethod.Get, "https://api.example:6443" + pathAndQuery);

    [Fact]
    public async Task Requests_beyond_the_burst_wait_for_the_rate()
    {
        using var client = Client(qps: 5, burst: 1);
        var clock = Stopwatch.StartNew();

        for (var i = 0; i < 10; i++)
        {
            using var request = Get("/apis/batch/v1/jobs");
            using var response = await client.SendAsync(request, CancellationToken.None);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // One at once, then one every 200 ms: at least eight whole periods and part of a ninth.
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.6), $"ten requests at 5 QPS took {clock.Elapsed}");
    }

    [Fact]
    public async Task Watches_are_not_held_back_by_the_limit()
    {
        // One token every 100 s: a limited request after the first waits far longer than this test.
        using var client = Client(qps: 0.01, burst: 1);
        using (var first = Get("/api/v1/pods"))
        {
            (await client.SendAsync(first, CancellationToken.None)).Dispose();
        }

        using var limited = Get("/api/v1/pods?labelSelector=a%3Db");
        using var stop = new CancellationTokenSource();
        var held = client.SendAsync(limited, stop.Token);
        for (var i = 0; i < 3; i++)
        {
            using var watch = Get("/apis/batch/v1/jobs?allowWatchBookmarks=true&watch=true&resourceVersion=5");
            using var response = await client.SendAsync(watch, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.False(held.IsCompleted, "a request over the limit went through");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => held);
    }

    [Fact]
    public async Task An_event_waits_until_no_other_call_waits_for_a_token()
    {
        var sent = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var client = new HttpMessageInvoker(new RateLimitingHandler(qps: 5, burst: 1) { InnerHandler = new Answering(sent) });
        using (var first = Get("/apis/batch/v1/namespaces/a/jobs"))
        {
            (await client.SendAsync(first, CancellationToken.None)).Dispose();
        }

        // The Event asks first; three Job creations come after it and still go before it.
        var requests = new List<HttpRequestMessage> { new(HttpMethod.Post, "https://api.example:6443/api/v1/namespaces/a/events") };
        var calls = new List<Task<HttpResponseMessage>> { client.SendAsync(requests[0], CancellationToken.None) };
        await Task.Delay(20);
        for (var i = 0; i < 3; i++)
        {
            requests.Add(new HttpRequestMessage(HttpMethod.Post, $"https://api.example:6443/apis/batch/v1/namespaces/a/jobs?n={i}"));
            calls.Add(client.SendAsync(requests[^1], CancellationToken.None));
        }

        foreach (var response in await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(20)))
        {
            response.Dispose();
        }

        requests.ForEach(r => r.Dispose());
        Assert.Equal("/api/v1/namespaces/a/events", sent.Last());
        Assert.Equal(5, sent.Count);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Auto_lifts_the_limit_once_the_api_server_shows_priority_and_fairness_and_not_before(bool serverHasIt)
    {
        const int calls = 10;
        var lifted = 0;
        var handler = RateLimitingHandler.Auto(qps: 1, burst: 1, () => lifted++);
        handler.InnerHandler = new Answering(flowSchema: serverHasIt);
        using var client = new HttpMessageInvoker(handler);
        var clock = Stopwatch.StartNew();
        var sent = 0;
        while (sent < calls && clock.Elapsed < TimeSpan.FromSeconds(1.5))
        {
            using var request = Get("/apis/batch/v1/namespaces/a/jobs");
            (await client.SendAsync(request, CancellationToken.None)).Dispose();
            sent++;
        }

        // At 1 QPS with a burst of 1, a limited client gets two or three calls through in 1.5 s; a lifted one all of them.
        if (serverHasIt)
        {
            Assert.Equal(calls, sent);
        }
        else
        {
            Assert.InRange(sent, 2, 3);
        }

        Assert.Equal(serverHasIt ? 1 : 0, lifted);
    }

    [Fact]
    public async Task A_rate_set_by_hand_holds_even_when_the_server_shows_priority_and_fairness()
    {
        using var client = new HttpMessageInvoker(new RateLimitingHandler(qps: 1, burst: 1) { InnerHandler = new Answering(flowSchema: true) });
        var clock = Stopwatch.StartNew();
        var sent = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(1.5))
        {
            using var request = Get("/apis/batch/v1/namespaces/a/jobs");
            (await client.SendAsync(request, CancellationToken.None)).Dispose();
            sent++;
        }

        Assert.InRange(sent, 2, 3);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(-1, 1)]
    [InlineData(5, 0)]
    public void A_rate_or_burst_that_is_not_positive_is_refused(double qps, int burst)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RateLimitingHandler(qps, burst).Dispose());
    }

    /// <summary>Answers OK to everything, noting each path in the order requests got through.</summary>
    private sealed class Answering(System.Collections.Concurrent.ConcurrentQueue<string>? sent = null, bool flowSchema = false) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            sent?.Enqueue(request.RequestUri!.AbsolutePath);
            var response = new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request };
            if (flowSchema)
            {
                response.Headers.Add(RateLimitingHandler.FlowSchemaHeader, "2b2ffd0e-3a85-4a4c-9e29-7c6b8e0b3f4d");
            }

            return Task.FromResult(response);
        }
    }
}
