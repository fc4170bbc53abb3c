using System.Collections.Concurrent;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Aws.Tests.Protocol;

/// <summary>A request as the stub server received it.</summary>
public sealed record ReceivedRequest(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, string Body)
{
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>What the stub answers: a status, headers and a JSON body.</summary>
public sealed record StubAnswer(int Status, string Body, IReadOnlyDictionary<string, string>? Headers = null)
{
    public static StubAnswer Ok(string body) => new(200, body);

    /// <summary>An error as AWS's JSON services answer it: <c>x-amzn-ErrorType</c>, a request id, a message.</summary>
    public static StubAnswer Error(int status, string code, string message) => new(
        status,
        $$"""{"__type":"{{code}}","message":{{System.Text.Json.JsonSerializer.Serialize(message)}}}""",
        new Dictionary<string, string>
        {
            ["x-amzn-ErrorType"] = $"{code}:http://internal.amazon.com/coral/com.amazonaws.stub/",
            ["x-amzn-RequestId"] = Guid.NewGuid().ToString(),
        });
}

/// <summary>
/// An HTTP server on 127.0.0.1 (Kestrel, a free port) that records every request and answers with a handler:
/// the stand-in for an AWS endpoint in tests.
/// </summary>
public sealed class StubHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private StubHttpServer(WebApplication app) => _app = app;

    public ConcurrentQueue<ReceivedRequest> Requests { get; } = new();

    public Uri Url { get; private set; } = null!;

    public static async Task<StubHttpServer> StartAsync(Func<ReceivedRequest, StubAnswer> handler) =>
        await StartAsync(r => Task.FromResult(handler(r))).ConfigureAwait(false);

    public static async Task<StubHttpServer> StartAsync(Func<ReceivedRequest, Task<StubAnswer>> handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new StubHttpServer(app);
        app.Run(async context =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
            var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
            // The raw target, as sent: Kestrel's decoded path would lose the encoding the signature covers.
            var target = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()!.RawTarget;
            var received = new ReceivedRequest(context.Request.Method, target, headers, body);
            server.Requests.Enqueue(received);
            var answer = await handler(received).ConfigureAwait(false);
            context.Response.StatusCode = answer.Status;
            context.Response.ContentType = "application/json";
            foreach (var (name, value) in answer.Headers ?? new Dictionary<string, string>())
            {
                context.Response.Headers[name] = value;
            }

            await context.Response.WriteAsync(answer.Body, context.RequestAborted).ConfigureAwait(false);
        });
        await app.StartAsync().ConfigureAwait(false);
        server.Url = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
