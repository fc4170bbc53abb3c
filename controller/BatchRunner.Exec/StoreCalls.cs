using System.Net;
using Polly;
using Polly.Retry;

namespace BatchRunner.Exec;

/// <summary>
/// The wrapper's calls to the results store, retried with backoff when the store or the way to it had a bad moment
/// (a refused or reset connection, a timeout, 5xx, throttling): the command's work is done or about to be, and a store
/// that blinked should not cost a rerun, nor (once the ledger row is up but its answer was lost) a second success of
/// the same index. What retrying cannot fix (access denied, no such bucket) fails at once.
/// </summary>
internal sealed class StoreCalls(TimeProvider time)
{
    private readonly ResiliencePipeline _pipeline = new ResiliencePipelineBuilder { TimeProvider = time }
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
            MaxRetryAttempts = 6,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(250),
        })
        .Build();

    public ValueTask<T> RunAsync<T>(Func<CancellationToken, ValueTask<T>> call, CancellationToken cancellation) =>
        _pipeline.ExecuteAsync(call, cancellation);

    public ValueTask RunAsync(Func<CancellationToken, ValueTask> call, CancellationToken cancellation) =>
        _pipeline.ExecuteAsync(call, cancellation);

    /// <summary>A failure of the store or of reaching it (not of the caller's cancellation): what the wrapper reports rather than crashes on.</summary>
    public static bool IsStoreFailure(Exception e) =>
        e is IOException or UnauthorizedAccessException or HttpRequestException or TimeoutException
            or Amazon.Runtime.AmazonServiceException or Amazon.Runtime.AmazonClientException
        || e is OperationCanceledException { CancellationToken.IsCancellationRequested: false };

    /// <summary>Worth another try: the network, a timeout, the service's 5xx or throttling; not a refusal or a missing bucket.</summary>
    public static bool IsTransient(Exception e) => BatchRunner.Aws.S3.S3ResultsStore.IsTransient(e);
}
