using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BatchRunner.Aws.Athena;
using BatchRunner.Aws.Batch;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRunner.Aws.Protocol;

/// <summary>
/// A client of one AWS service's JSON protocol: REST-JSON (AWS Batch: <c>POST /v1/submitjob</c>) and JSON 1.1
/// (Athena: <c>X-Amz-Target: AmazonAthena.StartQueryExecution</c>). It exists because AWSSDK.Batch and
/// AWSSDK.Athena are not on the NuGet registry this project builds from; it leans on AWSSDK.Core for credentials,
/// region resolution and SigV4 primitives. Every attempt is signed afresh; throttling, 5xx answers and network
/// errors are retried with exponential backoff and full jitter; errors become <see cref="AwsServiceException"/>.
/// Log lines name the service, operation, status and request id; never a header or a body.
/// </summary>
public sealed class AwsJsonClient : IDisposable
{
    private const string Json11ContentType = "application/x-amz-json-1.1";
    private const string RestJsonContentType = "application/json";

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly bool _ownsCredentials;
    private readonly IAwsCredentialSource _credentials;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lazy<AwsEndpoint> _endpoint;
    private readonly Random _jitter;

    /// <param name="options">The service and where it is.</param>
    /// <param name="json">How the service's members are named: AWS Batch's are camelCase, Athena's PascalCase.</param>
    /// <param name="http">An HTTP client to send with (not disposed here); by default one of its own.</param>
    /// <param name="credentials">By default AWSSDK.Core's default chain.</param>
    /// <param name="jitter">Randomness for the backoff (a seeded one in tests).</param>
    public AwsJsonClient(
        AwsServiceOptions options,
        JsonSerializerOptions json,
        HttpClient? http = null,
        IAwsCredentialSource? credentials = null,
        TimeProvider? time = null,
        ILogger<AwsJsonClient>? log = null,
        Random? jitter = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAttempts, 1);
        Options = options;
        Json = json;
        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        _ownsCredentials = credentials is null;
        _credentials = credentials ?? new DefaultAwsCredentialSource();
        _time = time ?? TimeProvider.System;
        _log = log ?? NullLogger<AwsJsonClient>.Instance;
        _jitter = jitter ?? Random.Shared;

        // Resolved on the first call, so that a client can be built before its region is known; a bad setting then
        // fails that call (AwsConfigurationException), not the host.
        _endpoint = new Lazy<AwsEndpoint>(() => AwsEndpointResolver.Resolve(options), LazyThreadSafetyMode.PublicationOnly);
    }

    public AwsServiceOptions Options { get; }

    public JsonSerializerOptions Json { get; }

    /// <summary>The endpoint and region calls go to (resolved on first use).</summary>
    public AwsEndpoint Endpoint => _endpoint.Value;

    /// <summary>
    /// Options for a service whose JSON members are camelCase (AWS Batch): absent members are left out, enums are
    /// strings. Only the types of <see cref="BatchJsonContext"/> resolve (source-generated, no reflection): an
    /// unlisted type fails on every build, not only under Native AOT.
    /// </summary>
    public static JsonSerializerOptions CamelCaseJson() => BatchJsonContext.Default.Options;

    /// <summary>
    /// Options for a service whose JSON members are PascalCase (Athena): absent members are left out, enums are
    /// strings. Only the types of <see cref="AthenaJsonContext"/> resolve (source-generated, no reflection).
    /// </summary>
    public static JsonSerializerOptions PascalCaseJson() => AthenaJsonContext.Default.Options;

    /// <summary>A REST-JSON call: <paramref name="body"/> as the JSON body of <paramref name="method"/> <paramref name="path"/>.</summary>
    /// <param name="idempotent">
    /// False for a call that makes something each time (AWS Batch's SubmitJob has no client token): it is sent again
    /// only when the service surely did not act on it (<see cref="AwsServiceException.SurelyNotDone"/>); any other
    /// failure goes to the caller, who can look for what it made before making it again.
    /// </param>
    public Task<TResponse> SendRestJsonAsync<TRequest, TResponse>(HttpMethod method, string path, TRequest body, CancellationToken cancellation, bool idempotent = true) =>
        SendAsync<TRequest, TResponse>(path, method, path, target: null, RestJsonContentType, body, idempotent, cancellation);

    /// <summary>A JSON 1.1 call: <c>POST /</c> with <c>X-Amz-Target: <paramref name="target"/></c>.</summary>
    public Task<TResponse> SendJson11Async<TRequest, TResponse>(string target, TRequest body, CancellationToken cancellation) =>
        SendAsync<TRequest, TResponse>(target, HttpMethod.Post, "/", target, Json11ContentType, body, idempotent: true, cancellation);

    private async Task<TResponse> SendAsync<TRequest, TResponse>(
        string operation, HttpMethod method, string path, string? target, string contentType, TRequest body, bool idempotent, CancellationToken cancellation)
    {
        var endpoint = _endpoint.Value;
        var payload = JsonSerializer.SerializeToUtf8Bytes(body, TypeInfo<TRequest>());
        var answer = TypeInfo<TResponse>();
        var url = new Uri(endpoint.Url, endpoint.Url.AbsolutePath.TrimEnd('/') + path);
        for (var attempt = 1; ; attempt++)
        {
            AwsServiceException failure;
            try
            {
                return await AttemptAsync(operation, method, url, target, contentType, payload, answer, endpoint.Region, cancellation).ConfigureAwait(false);
            }
            catch (AwsServiceException e) when (e.IsRetryable && attempt < Options.MaxAttempts && (idempotent || e.SurelyNotDone))
            {
                failure = e;
            }

            var delay = RetryDelay(attempt, failure.IsThrottling);
            _log.LogWarning(
                "{Service} {Operation} failed with {ErrorCode} (HTTP {Status}, request {RequestId}), attempt {Attempt} of {MaxAttempts}; retrying in {Delay}",
                Options.ServiceId, operation, failure.ErrorCode, failure.StatusCode, failure.RequestId, attempt, Options.MaxAttempts, delay);
            await Task.Delay(delay, _time, cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Full jitter: a random wait up to base × 2^(attempt−1), capped. Throttling starts from a longer base, as the
    /// AWS SDKs' standard mode does, because the service asked to slow down.
    /// </summary>
    internal TimeSpan RetryDelay(int attempt, bool throttled)
    {
        var baseDelay = throttled ? Options.RetryBaseDelay * 2.5 : Options.RetryBaseDelay;
        var ceiling = Math.Min(Options.MaxRetryDelay.TotalMilliseconds, baseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30)));
        double fraction;
        lock (_jitter)
        {
            fraction = _jitter.NextDouble();
        }

        return TimeSpan.FromMilliseconds(ceiling * fraction);
    }

    /// <summary>The metadata of <typeparamref name="T"/> from <see cref="Json"/>'s resolver: no reflection when it is generated.</summary>
    private JsonTypeInfo<T> TypeInfo<T>() => (JsonTypeInfo<T>)Json.GetTypeInfo(typeof(T));

    private async Task<TResponse> AttemptAsync<TResponse>(
        string operation, HttpMethod method, Uri url, string? target, string contentType, byte[] payload, JsonTypeInfo<TResponse> answer, string region,
        CancellationToken cancellation)
    {
        var credentials = await _credentials.GetAsync(cancellation).ConfigureAwait(false);
        using var request = new HttpRequestMessage(method, url);
        request.Content = new ByteArrayContent(payload);
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (target is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Amz-Target", target);
        }

        request.Headers.UserAgent.ParseAdd("batchrunner-aws-json/1");
        SigV4Signer.Sign(request, payload, credentials, region, Options.SigningName, _time.GetUtcNow());

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(Options.AttemptTimeout);
        var started = Stopwatch.GetTimestamp();
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellation.IsCancellationRequested)
        {
            throw new AwsServiceException(Options.ServiceId, "RequestTimeout", $"{operation}: no answer within {Options.AttemptTimeout}", 0, null, e);
        }
        catch (HttpRequestException e)
        {
            throw new AwsServiceException(Options.ServiceId, "NetworkError", $"{operation}: {e.Message}", 0, null, e)
            {
                NotSent = e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError,
            };
        }

        using (response)
        {
            var content = await response.Content.ReadAsByteArrayAsync(cancellation).ConfigureAwait(false);
            var requestId = Header(response, "x-amzn-RequestId") ?? Header(response, "x-amz-request-id");
            _log.LogDebug(
                "{Service} {Operation} answered {Status} in {Elapsed:0} ms (request {RequestId})",
                Options.ServiceId, operation, (int)response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds, requestId);
            if (!response.IsSuccessStatusCode)
            {
                throw ParseError(response, content, requestId);
            }

            try
            {
                return JsonSerializer.Deserialize(content.Length == 0 ? "{}"u8 : content, answer)
                    ?? throw new JsonException("the answer is null");
            }
            catch (JsonException e)
            {
                // A proxy's HTML page or a truncated answer: not the service's word, so worth another attempt.
                throw new AwsServiceException(Options.ServiceId, "MalformedResponse", $"{operation}: the answer is not the expected JSON ({e.Message})", 0, requestId, e);
            }
        }
    }

    private AwsServiceException ParseError(HttpResponseMessage response, byte[] content, string? requestId)
    {
        string? code = ErrorCode(Header(response, "x-amzn-ErrorType"));
        string? message = null;
        if (content.Length > 0)
        {
            try
            {
                using var document = JsonDocument.Parse(content);
                if (document.RootElement.ValueKind == JsonValueKind.Object)
                {
                    foreach (var property in document.RootElement.EnumerateObject())
                    {
                        if (property.Value.ValueKind != JsonValueKind.String)
                        {
                            continue;
                        }

                        switch (property.Name)
                        {
                            case "__type" or "code" or "Code":
                                code ??= ErrorCode(property.Value.GetString());
                                break;
                            case "message" or "Message" or "errorMessage":
                                message ??= property.Value.GetString();
                                break;
                        }
                    }
                }
            }
            catch (JsonException)
            {
                // Not JSON (a load balancer's page): the status alone speaks.
            }
        }

        var status = (int)response.StatusCode;
        return new AwsServiceException(
            Options.ServiceId,
            string.IsNullOrEmpty(code) ? $"Http{status}" : code,
            string.IsNullOrEmpty(message) ? response.ReasonPhrase ?? $"HTTP {status}" : message,
            status,
            requestId);
    }

    /// <summary><c>ClientException:http://internal…</c> and <c>com.amazon…#ClientException</c> both mean <c>ClientException</c>.</summary>
    private static string? ErrorCode(string? raw)
    {
        if (string.IsNullOrWhiteSpace(raw))
        {
            return null;
        }

        var code = raw.Trim();
        var colon = code.IndexOf(':');
        if (colon >= 0)
        {
            code = code[..colon];
        }

        var hash = code.LastIndexOf('#');
        return hash >= 0 ? code[(hash + 1)..] : code;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }

        if (_ownsCredentials)
        {
            (_credentials as IDisposable)?.Dispose();
        }
    }
}
