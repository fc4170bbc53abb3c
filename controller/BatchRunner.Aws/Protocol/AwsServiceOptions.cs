namespace BatchRunner.Aws.Protocol;

/// <summary>
/// Where and how to reach one AWS service over its JSON protocol. AWSSDK.Batch and AWSSDK.Athena are not served by
/// the NuGet registry this project builds from, so BatchRunner talks to those services itself on top of
/// AWSSDK.Core (credentials, SigV4 primitives, region resolution); these are the settings of one such service.
/// Everything left empty follows the SDK's and the AWS CLI's conventions (see <see cref="AwsEndpointResolver"/>).
/// Credentials are never part of these settings, so they cannot reach a log line.
/// </summary>
public sealed record AwsServiceOptions
{
    /// <summary>The service's id in endpoint variables: <c>batch</c> reads <c>AWS_ENDPOINT_URL_BATCH</c>.</summary>
    public required string ServiceId { get; init; }

    /// <summary>The name the service signs requests with (SigV4's service), e.g. <c>batch</c>, <c>athena</c>.</summary>
    public required string SigningName { get; init; }

    /// <summary>The first label of the service's host name (<c>batch</c>.eu-west-1.amazonaws.com); defaults to <see cref="SigningName"/>.</summary>
    public string? EndpointPrefix { get; init; }

    /// <summary>A region such as <c>eu-west-1</c>; empty: <c>AWS_REGION</c>, <c>AWS_DEFAULT_REGION</c>, the profile.</summary>
    public string? Region { get; init; }

    /// <summary>An endpoint overriding the environment's (as the AWS CLI's <c>--endpoint-url</c>).</summary>
    public string? EndpointUrl { get; init; }

    /// <summary>Attempts per call, the first included; throttling, 5xx answers and network errors are retried.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>The first retry waits up to this long (full jitter), doubling per attempt.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>No retry waits longer than this.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>One attempt that takes longer is abandoned and counts as a transient failure.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>What a log line may say: which service, where; never as whom.</summary>
    public override string ToString() =>
        $"{ServiceId}: endpoint {(string.IsNullOrEmpty(EndpointUrl) ? "from the SDK's configuration" : EndpointUrl)}, " +
        $"region {(string.IsNullOrEmpty(Region) ? "from the SDK's configuration" : Region)}";
}
