using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace BatchRunner.Faults.Testing;

/// <summary>How an <see cref="HttpsFaultProxy"/> answers a request it takes: before the server sees it, or after the server did it.</summary>
public enum HttpFaultTiming
{
    /// <summary>The server never sees the request (a throttle, an overloaded front end).</summary>
    Instead,

    /// <summary>The server does the request, but the client gets the error (the API server's 504 "may still be processing").</summary>
    AfterDoing,
}

/// <summary>An error as the Kubernetes API server answers it: HTTP status, a <c>Status</c> object, and for 429 when to come back.</summary>
public sealed record KubernetesError(int Code, string Reason, string Message, int? RetryAfterSeconds = null)
{
    public static KubernetesError TooManyRequests { get; } = new(429, "TooManyRequests", "Too many requests, please try again later.", 1);

    public static KubernetesError InternalError { get; } = new(500, "InternalError", "Internal error occurred: etcdserver: request timed out");

    public static KubernetesError ServiceUnavailable { get; } = new(503, "ServiceUnavailable", "the server is currently unable to handle the request");

    public static KubernetesError Timeout { get; } = new(504, "Timeout", "Timeout: request did not complete within requested timeout - context deadline exceeded");

    public string Json() => System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["kind"] = "Status",
        ["apiVersion"] = "v1",
        ["metadata"] = new Dictionary<string, object>(),
        ["status"] = "Failure",
        ["message"] = Message,
        ["reason"] = Reason,
        ["details"] = RetryAfterSeconds is { } seconds ? new Dictionary<string, object> { ["retryAfterSeconds"] = seconds } : null,
        ["code"] = Code,
    });
}

/// <summary>
/// An HTTPS reverse proxy on 127.0.0.1 in front of a TLS server whose CA it holds (the test control plane's): it
/// presents a certificate for 127.0.0.1 signed by that CA, so a client that trusts the server trusts it, and passes
/// every request through (watches stream) except a fraction it is asked to answer with an error, before or after the
/// server did them (<see cref="FailFraction"/>).
/// </summary>
public sealed class HttpsFaultProxy : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpMessageInvoker _upstream;
    private readonly ConcurrentDictionary<string, int> _answered = new(StringComparer.Ordinal);

    private HttpsFaultProxy(WebApplication app, HttpMessageInvoker upstream, int port)
    {
        _app = app;
        _upstream = upstream;
        Port = port;
    }

    public int Port { get; }

    /// <summary>Errors given so far, by reason and timing (e.g. <c>TooManyRequests instead</c>).</summary>
    public IReadOnlyDictionary<string, int> Answered => _answered.ToDictionary(p => p.Key, p => p.Value);

    /// <summary>Requests passed through so far.</summary>
    public int Forwarded => _forwarded;

    private int _forwarded;

    /// <summary>Starts a proxy to <paramref name="upstream"/> (https) with a server certificate signed by the CA in the PEM files given.</summary>
    public static async Task<HttpsFaultProxy> StartAsync(Uri upstream, string caCertificatePem, string caKeyPem)
    {
        using var ca = X509Certificate2.CreateFromPemFile(caCertificatePem, caKeyPem);
        var certificate = IssueFor127(ca);
        var caOnly = X509CertificateLoader.LoadCertificate(ca.RawData);
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            EnableMultipleHttp2Connections = true,
            ActivityHeadersPropagator = null,
            SslOptions = new SslClientAuthenticationOptions
            {
                // The server's certificate must chain to its own CA, as the client's kubeconfig asks.
                RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && ChainsTo(presented, caOnly),
            },
        };
        var upstreamInvoker = new HttpMessageInvoker(handler);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddHttpForwarder();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = HttpProtocols.Http1AndHttp2;
            listen.UseHttps(certificate);
        }));
        var app = builder.Build();
        HttpsFaultProxy? proxy = null;
        var target = upstream.GetLeftPart(UriPartial.Authority) + "/";
        // Watches run for minutes with gaps between events.
        var config = new ForwarderRequestConfig { ActivityTimeout = TimeSpan.FromMinutes(15) };
        app.Run(async context =>
        {
            if (proxy!.TryDraw(out var fault))
            {
                if (fault.Timing == HttpFaultTiming.AfterDoing)
                {
                    // Done upstream (the request as the client sent it), then its answer is thrown away.
                    using var done = new HttpRequestMessage(new HttpMethod(context.Request.Method), target.TrimEnd('/') + context.Request.Path + context.Request.QueryString);
                    using var body = new MemoryStream();
                    await context.Request.Body.CopyToAsync(body);
                    done.Content = new ByteArrayContent(body.ToArray());
                    foreach (var (name, values) in context.Request.Headers)
                    {
                        if (!done.Headers.TryAddWithoutValidation(name, values.ToArray()) && !name.StartsWith(':'))
                        {
                            done.Content.Headers.TryAddWithoutValidation(name, values.ToArray());
                        }
                    }

                    done.Headers.Host = null;
                    using var thrownAway = await proxy._upstream.SendAsync(done, context.RequestAborted);
                }

                proxy._answered.AddOrUpdate($"{fault.Error.Reason} {fault.Timing.ToString().ToLowerInvariant()}", 1, (_, n) => n + 1);
                context.Response.StatusCode = fault.Error.Code;
                context.Response.ContentType = "application/json";
                if (fault.Error.RetryAfterSeconds is { } seconds)
                {
                    context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                await context.Response.WriteAsync(fault.Error.Json());
                return;
            }

            Interlocked.Increment(ref proxy._forwarded);
            await context.RequestServices.GetRequiredService<IHttpForwarder>().SendAsync(context, target, proxy._upstream, config);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        proxy = new HttpsFaultProxy(app, upstreamInvoker, new Uri(address).Port);
        return proxy;
    }

    private readonly object _drawGate = new();
    private Random? _draw;
    private double _fraction;
    private IReadOnlyList<(KubernetesError Error, HttpFaultTiming Timing)> _errors = [];

    /// <summary>
    /// From now on, each request gets one of <paramref name="errors"/> with probability <paramref name="fraction"/>
    /// (drawn from <paramref name="seed"/>); a fraction of 0 stops it.
    /// </summary>
    public void FailFraction(double fraction, IReadOnlyList<(KubernetesError Error, HttpFaultTiming Timing)> errors, int seed = 0)
    {
        lock (_drawGate)
        {
            _draw = new Random(seed);
            _errors = errors;
            _fraction = errors.Count == 0 ? 0 : fraction;
        }
    }

    private bool TryDraw(out (KubernetesError Error, HttpFaultTiming Timing) fault)
    {
        lock (_drawGate)
        {
            if (_fraction > 0 && _draw!.NextDouble() < _fraction)
            {
                fault = _errors[_draw.Next(_errors.Count)];
                return true;
            }
        }

        fault = default;
        return false;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _upstream.Dispose();
    }

    private static X509Certificate2 IssueFor127(X509Certificate2 ca)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=batchrunner-fault-proxy", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        // Within the CA's validity (it may be minutes old).
        var notBefore = new DateTimeOffset(ca.NotBefore.ToUniversalTime());
        var notAfter = DateTimeOffset.UtcNow.AddDays(1) < ca.NotAfter.ToUniversalTime() ? DateTimeOffset.UtcNow.AddDays(1) : new DateTimeOffset(ca.NotAfter.ToUniversalTime());
        using var issued = request.Create(ca, notBefore, notAfter, serial);
        using var withKey = issued.CopyWithPrivateKey(key);
        // Kestrel on Linux wants a key it can use after this method returns: round-trip through PKCS#12.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    private static bool ChainsTo(X509Certificate presented, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var certificate = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        return chain.Build(certificate);
    }
}
