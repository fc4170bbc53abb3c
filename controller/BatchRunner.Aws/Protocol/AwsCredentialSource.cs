using Amazon.Runtime;
using Amazon.Runtime.Credentials;

namespace BatchRunner.Aws.Protocol;

/// <summary>Where a client's signing credentials come from, asked before every attempt (they may rotate).</summary>
public interface IAwsCredentialSource
{
    Task<ImmutableCredentials> GetAsync(CancellationToken cancellation);
}

/// <summary>
/// AWSSDK.Core's default chain: environment, profile, web identity (IRSA, through AWSSDK.SecurityToken), container
/// and instance roles. The chain's answer caches and refreshes itself; it is resolved once, lazily.
/// </summary>
public sealed class DefaultAwsCredentialSource : IAwsCredentialSource, IDisposable
{
    private readonly SemaphoreSlim _resolving = new(1, 1);
    private AWSCredentials? _credentials;

    public async Task<ImmutableCredentials> GetAsync(CancellationToken cancellation)
    {
        try
        {
            var credentials = _credentials ?? await ResolveAsync(cancellation).ConfigureAwait(false);
            return await credentials.GetCredentialsAsync().WaitAsync(cancellation).ConfigureAwait(false);
        }
        catch (AmazonClientException e)
        {
            // The SDK's message names the sources it tried; it holds no secret.
            throw new AwsConfigurationException($"no AWS credentials: {e.Message}", e);
        }
    }

    // A failed resolution is not kept: a web identity token mounted a little later is found on the next call.
    private async Task<AWSCredentials> ResolveAsync(CancellationToken cancellation)
    {
        await _resolving.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            return _credentials ??= await DefaultAWSCredentialsIdentityResolver.GetCredentialsAsync(null).WaitAsync(cancellation).ConfigureAwait(false);
        }
        finally
        {
            _resolving.Release();
        }
    }

    public void Dispose() => _resolving.Dispose();
}

/// <summary>Fixed credentials (tests, or a caller that resolved them itself).</summary>
public sealed class StaticAwsCredentialSource(ImmutableCredentials credentials) : IAwsCredentialSource
{
    public Task<ImmutableCredentials> GetAsync(CancellationToken cancellation) => Task.FromResult(credentials);
}
