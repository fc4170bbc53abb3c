using System.Net;

namespace BatchRunner.Aws.Protocol;

/// <summary>
/// An error an AWS service answered (or a call that never got an answer: <see cref="StatusCode"/> 0), with the
/// error code from <c>x-amzn-ErrorType</c> or the body's <c>__type</c>, the service's message and request id.
/// </summary>
public sealed class AwsServiceException : Exception
{
    private static readonly HashSet<string> ThrottlingCodes = new(StringComparer.Ordinal)
    {
        "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException", "RequestThrottled",
        "RequestThrottledException", "RequestLimitExceeded", "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded", "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
    };

    private static readonly HashSet<string> TransientCodes = new(StringComparer.Ordinal)
    {
        "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure", "ServiceUnavailable",
        "ServiceUnavailableException", "ServerException", "InternalServerException",
    };

    public AwsServiceException(string service, string errorCode, string message, int statusCode, string? requestId, Exception? inner = null)
        : base($"{service}: {errorCode}: {message}", inner)
    {
        Service = service;
        ErrorCode = errorCode;
        ServiceMessage = message;
        StatusCode = statusCode;
        RequestId = requestId;
    }

    /// <summary>Which service answered (its <see cref="AwsServiceOptions.ServiceId"/>).</summary>
    public string Service { get; }

    /// <summary>The error's code, e.g. <c>ClientException</c>, <c>AccessDeniedException</c>, <c>ThrottlingException</c>.</summary>
    public string ErrorCode { get; }

    /// <summary>The service's own words.</summary>
    public string ServiceMessage { get; }

    /// <summary>The HTTP status of the answer; 0 when there was none (network error, timeout).</summary>
    public int StatusCode { get; }

    public string? RequestId { get; }

    /// <summary>
    /// The service asks the caller to slow down: a throttling code, HTTP 429, or AWS Batch's way of saying it
    /// (<c>ClientException</c> "Too Many Requests").
    /// </summary>
    public bool IsThrottling =>
        ThrottlingCodes.Contains(ErrorCode) || StatusCode == (int)HttpStatusCode.TooManyRequests ||
        ServiceMessage.Contains("Too Many Requests", StringComparison.OrdinalIgnoreCase) ||
        ServiceMessage.Contains("Rate exceeded", StringComparison.OrdinalIgnoreCase);

    /// <summary>The request never reached the service: the connection to it could not be made.</summary>
    public bool NotSent { get; init; }

    /// <summary>
    /// The service surely did not act on the request: it refused it to slow the caller down, or never got it. Otherwise
    /// (no answer after sending, a 5xx) it may have acted: a call that is not idempotent is not simply sent again.
    /// </summary>
    public bool SurelyNotDone => NotSent || IsThrottling;

    /// <summary>Trying again may succeed: throttling, 5xx, a known transient code, or no answer at all.</summary>
    public bool IsRetryable => IsThrottling || StatusCode == 0 || StatusCode >= 500 || TransientCodes.Contains(ErrorCode);

    /// <summary>The credentials are refused or lack a permission: retrying does not help.</summary>
    public bool IsAccessDenied =>
        StatusCode is 401 or 403 || ErrorCode is "AccessDeniedException" or "AccessDenied" or "UnrecognizedClientException"
            or "InvalidSignatureException" or "ExpiredTokenException" or "UnauthorizedOperation" or "MissingAuthenticationTokenException";
}
