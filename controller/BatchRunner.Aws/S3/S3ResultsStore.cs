using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Amazon;
using Amazon.S3;
using Amazon.S3.Model;
using BatchRunner.Core.Store;
using Polly;
using Polly.Retry;

namespace BatchRunner.Aws.S3;

/// <summary>
/// The results layout under <c>s3://bucket/prefix</c>. Files above the part size go up as multipart uploads,
/// <see cref="PartsAtOnce"/> parts at a time, so memory stays at a few parts whatever the file's size; an upload that
/// fails is aborted, so no half object (and no orphaned parts) remain. An object appears whole or not at all, as S3
/// makes every PUT and completed multipart upload.
/// Each body is read into memory by the store and sent with its Content-MD5, and calls are tried again here
/// (<see cref="Tries"/>), not by the SDK, each try from a stream of its own. With the SDK reading the file itself and
/// retrying (AWSSDK.S3 4.0.104, aws-chunked signing as it uses over plain HTTP), a try that failed as S3 sent its
/// 100 Continue kept reading the body the next try was sending: a part stored 72 KiB short and shifted, and the upload
/// said it succeeded; with the SDK's retries off but the SDK still reading the file, a part was once acknowledged
/// shorter than sent. S3 refuses a body whose MD5 is not the one sent (BadDigest), which is then tried again.
/// </summary>
public sealed class S3ResultsStore : IResultsStore, IDisposable
{
    /// <summary>Parts going up at once, each held in memory while it does (the wrapper runs in the workload's pod).</summary>
    private const int PartsAtOnce = 2;

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
            var body = ArrayPool<byte>.Shared.Rent((int)length);
            try
            {
                await ReadAsync(path, 0, body.AsMemory(0, (int)length), cancellation).ConfigureAwait(false);
                await PutObjectAsync(_prefix + key, body, (int)length, cancellation).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(body);
            }

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
                    var size = (int)Math.Min(_partSize, length - offset);
                    var body = ArrayPool<byte>.Shared.Rent(size);
                    try
                    {
                        await ReadAsync(path, offset, body.AsMemory(0, size), token).ConfigureAwait(false);
                        var md5 = ContentMd5(body, size);
                        var response = await _uploadTries.ExecuteAsync(
                            async tryToken =>
                            {
                                using var stream = new MemoryStream(body, 0, size, writable: false);
                                return await _s3.UploadPartAsync(new UploadPartRequest
                                {
                                    BucketName = _bucket,
                                    Key = key,
                                    UploadId = upload.UploadId,
                                    PartNumber = part + 1,
                                    InputStream = stream,
                                    PartSize = size,
                                    MD5Digest = md5,
                                }, tryToken).ConfigureAwait(false);
                            },
                            token).ConfigureAwait(false);
                        etags[part] = new PartETag(part + 1, response.ETag);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(body);
                    }
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
        var body = content.ToArray();
        await PutObjectAsync(_prefix + key, body, body.Length, cancellation).ConfigureAwait(false);
    }

    /// <summary>One object from the first <paramref name="length"/> bytes of <paramref name="body"/>, each try sending them from a stream of its own.</summary>
    private async Task PutObjectAsync(string key, byte[] body, int length, CancellationToken cancellation)
    {
        var md5 = ContentMd5(body, length);
        await _uploadTries.ExecuteAsync(
            async token =>
            {
                using var stream = new MemoryStream(body, 0, length, writable: false);
                await _s3.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = key, InputStream = stream, AutoCloseStream = false, MD5Digest = md5 }, token).ConfigureAwait(false);
            },
            cancellation).ConfigureAwait(false);
    }

    /// <summary>Reads <paramref name="into"/>'s length of the file from <paramref name="offset"/>; a file shorter than that is an error.</summary>
    private static async Task ReadAsync(string path, long offset, Memory<byte> into, CancellationToken cancellation)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);
        var read = 0;
        while (read < into.Length)
        {
            var n = await RandomAccess.ReadAsync(file, into[read..], offset + read, cancellation).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException($"{path} ended at {offset + read} bytes while it was being uploaded: it changed size");
            }

            read += n;
        }
    }

    // Content-MD5 is S3's check that the body it got is the body sent (it answers BadDigest otherwise), not cryptography.
#pragma warning disable CA5351
    private static string ContentMd5(byte[] body, int length) => Convert.ToBase64String(MD5.HashData(body.AsSpan(0, length)));
#pragma warning restore CA5351

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
    /// An upload's try is also worth another when S3 got another body than was sent (BadDigest, IncompleteBody), or
    /// when reading its body failed as its connection went. A file that is not there fails at once.
    /// </summary>
    private static bool IsTransientForUpload(Exception e) =>
        IsTransient(e)
        || e is Amazon.Runtime.AmazonServiceException { ErrorCode: "BadDigest" or "IncompleteBody" }
        || e is IOException and not (FileNotFoundException or DirectoryNotFoundException);

    public void Dispose() => _s3.Dispose();
}
