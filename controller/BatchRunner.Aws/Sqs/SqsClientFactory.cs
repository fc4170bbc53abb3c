using Amazon;
using Amazon.SQS;

namespace BatchRunner.Aws.Sqs;

/// <summary>
/// Where and as whom to reach SQS. Everything left empty is resolved by the AWS SDK's own conventions, the same as
/// the AWS CLI's: the region from <c>AWS_REGION</c> (or <c>AWS_DEFAULT_REGION</c>, the profile, instance metadata);
/// the endpoint from <c>AWS_ENDPOINT_URL_SQS</c>, else <c>AWS_ENDPOINT_URL</c>, else the profile's
/// <c>endpoint_url</c> (AWSSDK.Core 4 reads these itself; <c>AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true</c> turns
/// them off); credentials from the default chain (environment, profile, web identity as with IRSA, container and
/// instance roles). Credentials are never part of these settings, so they cannot reach a log line.
/// </summary>
/// <param name="Region">A region name such as <c>eu-west-1</c>, overriding the SDK's resolution.</param>
/// <param name="EndpointUrl">An SQS-compatible endpoint, overriding the environment's (as the AWS CLI's <c>--endpoint-url</c>).</param>
public sealed record SqsConnection(string? Region = null, string? EndpointUrl = null)
{
    /// <summary>What a log line may say about the connection: where, never as whom.</summary>
    public override string ToString() =>
        $"endpoint {(string.IsNullOrEmpty(EndpointUrl) ? "from the SDK's configuration" : EndpointUrl)}, " +
        $"region {(string.IsNullOrEmpty(Region) ? "from the SDK's configuration" : Region)}";
}

/// <summary>Builds the SQS client from a <see cref="SqsConnection"/> and the SDK's conventions.</summary>
public static class SqsClientFactory
{
    public static AwsSqsClient Create(SqsConnection connection)
    {
        var config = new AmazonSQSConfig();
        if (!string.IsNullOrEmpty(connection.Region))
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(connection.Region);
        }

        if (!string.IsNullOrEmpty(connection.EndpointUrl))
        {
            config.ServiceURL = connection.EndpointUrl;

            // A custom endpoint says nothing about the signing region; without one the SDK would guess from the host name.
            if (!string.IsNullOrEmpty(connection.Region))
            {
                config.AuthenticationRegion = connection.Region;
            }
        }

        // No credentials given: the client resolves them with the default chain, lazily, on its first call.
        return new AwsSqsClient(new AmazonSQSClient(config));
    }
}
