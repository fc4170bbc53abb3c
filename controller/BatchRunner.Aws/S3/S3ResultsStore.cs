using System.Net;
using System.Runtime.CompilerServices;
using Amazon;
using Amazon.S3;
using Amazon.S3.Model;
using BatchRunner.Core.Store;
using Polly;
using Polly.Retry;

namespace BatchRunner.Aws.S3;

/// <summary>
/// The results layout under <c>s3://bucket/prefix</c>. Files above the part size go up as multipart uploads
/// whose parts the SDK reads straight from the file, so memory stays at a few parts whatever the file's size;
/// an upload that fails is aborted, so no half object (and no orphaned parts) remain. An object appears whole
/// or not at all, as S3 makes every PUT and completed multipart upload.
/// Calls are tried again here (<see cref="Tries"/>), not by the SDK: its own retry of an upload sent the body on from
/// where the failed try had stopped reading it (AWSSDK.S3 4.0.104 with aws-chunked signing, which it uses over plain
/// HTTP: a part retried after a reset 72 KiB in was stored 72 KiB short and shifted, and the upload said it succeeded).
/// Here each try of an upload opens its own stream.
/// </summary>
public sealed class S3ResultsStore : IResultsStore, IDisposable
{
    private const int PartsAtOnce = 4;

    private readonly IAmazonS3 _s3;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly long _partSize;
    private readonly ResiliencePipeline _tries;
    private readonly ResiliencePipeline _uploadTries;

    /// <param name="s3">A client that does not retry itself (<see cref="CreateClient"/>): this store does.</param>
    public S3ResultsStore(IAmazonS3 s3, StoreUri uri, long partSizeBytes = 16L * 1024 * 1024, TimeProvider? time = null)
    {
        if (!uri.IsS3)
        {
            throw new ArgumentException($"{uri} is not an s3:// location", nameof(uri));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(partSizeBytes, ResultsOptions.MinPartSizeBytes);
        _s3 = s3;
        _bucket = uri.Bucket!;
        _prefix = uri.Prefix.Length == 0 ? "" : uri.Prefix + "/";
        _partSize = partSizeBytes;
        _tries = Tries(time ?? TimeProvider.System, IsTransient);
        _uploadTries = Tries(time ?? TimeProvider.System, IsTransientForUpload);
        Location = uri.ToString();
    }

    /// <summary>A store over the options' S3 location, with a client built from the options and the SDK's conventions.</summary>
    public static S3ResultsStore Create(ResultsOptions options, StoreUri uri) => new(CreateClient(options), uri, options.PartSizeBytes);

    public static AmazonS3Client CreateClient(ResultsOptions options)
    {
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.ForcePathStyle,
            // Checksums only where S3 requires them, as SDKs did before 2025: this SDK's own retry of a PUT sent with a
            // trailing checksum can throw ArgumentException (a trailer key added twice), which no caller expects; and
            // S3-compatible stores differ on trailers. TLS and S3's Content-Length check still guard the bytes.
            RequestChecksumCalculation = Amazon.Runtime.RequestChecksumCalculation.WHEN_REQUIRED,
            // The store tries again itself, each try with a fresh body (see the class's summary).
            MaxErrorRetry = 0,
        };
        if (!string.IsNullOrEmpty(options.Region))
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }

        if (!string.IsNullOrEmpty(options.EndpointUrl))
        {
            config.ServiceURL = options.EndpointUrl;
            if (!string.IsNullOrEmpty(options.Region))
            {
                config.AuthenticationRegion = options.Region;
            }
        }

        return new AmazonS3Client(config);
    }

    public string Location { get; }

    public string? LocalRoot => null;

    public long PartSizeBytes => _partSize;

    public async Task PutFileAsync(string key, string path, CancellationToken cancellation)
    {
        var length = new FileInfo(path).Length;
        if (length <= _partSize)
        {
            await _uploadTries.ExecuteAsync(
                async token => await _s3.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = _prefix + key, FilePath = path }, token).ConfigureAwait(false),
                cancellation).ConfigureAwait(false);
            return;
        }

        await PutMultipartAsync(_prefix + key, path, length, cancellation).ConfigureAwait(false);
    }

    private async Task PutMultipartAsync(string key, string path, long length, CancellationToken cancellation)
    {
        var upload = await _tries.ExecuteAsync(
            async token => await _s3.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _bucket, Key = key }, token).ConfigureAwait(false),
            cancellation).ConfigureAwait(false);
        try
        {
            var count = (int)((length + _partSize - 1) / _partSize);
            var etags = new PartETag[count];
            await Parallel.ForEachAsync(
                Enumerable.Range(0, count),
                new ParallelOptions { MaxDegreeOfParallelism = PartsAtOnce, CancellationToken = cancellation },
                async (part, token) =>
                {
                    var offset = part * _partSize;
                    var response = await _uploadTries.ExecuteAsync(
                        async tryToken => await _s3.UploadPartAsync(new UploadPartRequest
                        {
                            BucketName = _bucket,
                            Key = key,
                            UploadId = upload.UploadId,
                            PartNumber = part + 1,
                            FilePath = path,
                            FilePosition = offset,
                            PartSize = Math.Min(_partSize, length - offset),
                        }, tryToken).ConfigureAwait(false),
                        token).ConfigureAwait(false);
                    etags[part] = new PartETag(part + 1, response.ETag);
                }).ConfigureAwait(false);

            await _tries.ExecuteAsync(
                async token => await _s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
                {
                    BucketName = _bucket,
                    Key = key,
                    UploadId = upload.UploadId,
                    PartETags = [.. etags],
                }, token).ConfigureAwait(false),
                cancellation).ConfigureAwait(false);
        }
        catch
        {
            // Uploaded parts are billed until aborted; CancellationToken.None so a cancelled upload is still cleaned up.
            await _tries.ExecuteAsync(
                async token => await _s3.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _bucket, Key = key, UploadId = upload.UploadId }, token).ConfigureAwait(false),
                CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    public async Task PutBytesAsync(string key, ReadOnlyMemory<byte> content, CancellationToken cancellation)
    {
        var bytes = content.ToArray();
        await _uploadTries.ExecuteAsync(
            async token =>
            {
                using var stream = new MemoryStream(bytes, writable: false);
                await _s3.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = _prefix + key, InputStream = stream, AutoCloseStream = false }, token).ConfigureAwait(false);
            },
            cancellation).ConfigureAwait(false);
    }

    public async Task<byte[]?> GetBytesAsync(string key, CancellationToken cancellation)
    {
        try
        {
            return await _tries.ExecuteAsync(
                async token =>
                {
                    using var response = await _s3.GetObjectAsync(_bucket, _prefix + key, token).ConfigureAwait(false);
                    using var buffer = new MemoryStream();
                    await response.ResponseStream.CopyToAsync(buffer, token).ConfigureAwait(false);
                    return buffer.ToArray();
                },
                cancellation).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task DownloadAsync(string key, string path, CancellationToken cancellation)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        await _tries.ExecuteAsync(
            async token =>
            {
                using var response = await _s3.GetObjectAsync(_bucket, _prefix + key, token).ConfigureAwait(false);
                await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous);
                await response.ResponseStream.CopyToAsync(file, token).ConfigureAwait(false);
            },
            cancellation).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellation)
    {
        var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = _prefix + prefix };
        do
        {
            var page = await _tries.ExecuteAsync(
                async token => await _s3.ListObjectsV2Async(request, token).ConfigureAwait(false),
                cancellation).ConfigureAwait(false);
            foreach (var item in page.S3Objects ?? [])
            {
                yield return new StoredObject(item.Key[_prefix.Length..], item.Size ?? 0);
            }

            request.ContinuationToken = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (request.ContinuationToken is not null);
    }

    public async Task MoveAsync(string fromKey, string toKey, CancellationToken cancellation)
    {
        // S3 has no rename: a server-side copy (objects up to 5 GB; compaction's parts are far smaller), then the delete.
        await _tries.ExecuteAsync(
            async token => await _s3.CopyObjectAsync(new CopyObjectRequest
            {
                SourceBucket = _bucket,
                SourceKey = _prefix + fromKey,
                DestinationBucket = _bucket,
                DestinationKey = _prefix + toKey,
            }, token).ConfigureAwait(false),
            cancellation).ConfigureAwait(false);
        await DeleteAsync(fromKey, cancellation).ConfigureAwait(false);
    }

    public async Task DeleteAsync(string key, CancellationToken cancellation) =>
        await _tries.ExecuteAsync(
            async token => await _s3.DeleteObjectAsync(_bucket, _prefix + key, token).ConfigureAwait(false),
            cancellation).ConfigureAwait(false);

    /// <summary>
    /// Three tries with exponential backoff and jitter, as the SDK's standard mode makes, for what another try can fix:
    /// the network, a timeout, 5xx, throttling. A refusal (403, 404, a missing bucket) fails at once.
    /// </summary>
    private static ResiliencePipeline Tries(TimeProvider time, Func<Exception, bool> worthAnotherTry) => new ResiliencePipelineBuilder { TimeProvider = time }
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle(worthAnotherTry),
            MaxRetryAttempts = 2,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(200),
            MaxDelay = TimeSpan.FromSeconds(5),
        })
        .Build();

    /// <summary>Worth another try: the network, a timeout, the service's 5xx or throttling; not a refusal or a missing bucket.</summary>
    public static bool IsTransient(Exception e) => e switch
    {
        HttpRequestException or TimeoutException => true,
        OperationCanceledException canceled => !canceled.CancellationToken.IsCancellationRequested,
        Amazon.Runtime.AmazonServiceException service => service.StatusCode is >= HttpStatusCode.InternalServerError or HttpStatusCode.TooManyRequests
            || service.ErrorCode is "SlowDown" or "RequestTimeout" or "Throttling" or "ThrottlingException",
        Amazon.Runtime.AmazonClientException => true,
        IOException io => io.InnerException is System.Net.Sockets.SocketException or HttpRequestException,
        _ => false,
    };

    /// <summary>
    /// An upload's try is also worth another when reading its body failed: a connection reset mid-body makes the SDK
    /// close the body while it is still being read (an <see cref="IOException"/>, "Invalid argument", from the read).
    /// The next try reads its own stream; a file that is not there fails at once.
    /// </summary>
    private static bool IsTransientForUpload(Exception e) =>
        IsTransient(e) || e is IOException and not (FileNotFoundException or DirectoryNotFoundException);

    public void Dispose() => _s3.Dispose();
}
