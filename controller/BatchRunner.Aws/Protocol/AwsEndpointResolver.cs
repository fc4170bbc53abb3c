using Amazon;
using Amazon.Runtime;

namespace BatchRunner.Aws.Protocol;

/// <summary>The endpoint and signing region a client resolved.</summary>
public sealed record AwsEndpoint(Uri Url, string Region);

/// <summary>
/// Resolves a service's endpoint and region as the AWS SDKs do: the region given, else the SDK's resolution
/// (<c>AWS_REGION</c>, <c>AWS_DEFAULT_REGION</c>, the profile); the endpoint given, else
/// <c>AWS_ENDPOINT_URL_&lt;SERVICE&gt;</c>, else <c>AWS_ENDPOINT_URL</c> (both ignored when
/// <c>AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true</c>), else the service's public endpoint in the region's partition.
/// </summary>
public static class AwsEndpointResolver
{
    public static AwsEndpoint Resolve(AwsServiceOptions options, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var region = !string.IsNullOrWhiteSpace(options.Region) ? options.Region.Trim() : ResolveRegion();
        if (string.IsNullOrEmpty(region))
        {
            throw new AwsConfigurationException(
                $"no AWS region for {options.ServiceId}: set its Region setting, AWS_REGION or AWS_DEFAULT_REGION, or a region in the AWS profile");
        }

        var url = options.EndpointUrl;
        if (string.IsNullOrWhiteSpace(url) && !IsTrue(environment("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")))
        {
            var variable = "AWS_ENDPOINT_URL_" + options.ServiceId.ToUpperInvariant().Replace(' ', '_').Replace('-', '_');
            url = NonEmpty(environment(variable)) ?? NonEmpty(environment("AWS_ENDPOINT_URL"));
        }

        if (string.IsNullOrWhiteSpace(url))
        {
            // The region's partition decides the DNS suffix (amazonaws.com, amazonaws.com.cn, …).
            var suffix = RegionEndpoint.GetBySystemName(region).PartitionDnsSuffix ?? "amazonaws.com";
            url = $"https://{options.EndpointPrefix ?? options.SigningName}.{region}.{suffix}";
        }

        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            throw new AwsConfigurationException($"the endpoint of {options.ServiceId} is not an http(s) URL: '{url}'");
        }

        return new AwsEndpoint(uri, region);
    }

    private static string? ResolveRegion()
    {
        try
        {
            return FallbackRegionFactory.GetRegionEndpoint()?.SystemName;
        }
        catch (AmazonClientException)
        {
            return null;
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static bool IsTrue(string? value) => string.Equals(value?.Trim(), "true", StringComparison.OrdinalIgnoreCase);
}

/// <summary>Settings that cannot work (no region, a malformed endpoint, no credentials): retrying does not help.</summary>
public sealed class AwsConfigurationException(string message, Exception? inner = null) : Exception(message, inner);
