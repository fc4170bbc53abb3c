using Amazon.S3.Model;
using BatchRunner.Aws.S3;
using BatchRunner.Core.Store;
using BatchRunner.Store;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Results.Tests;

/// <summary>The S3 store against fauxqs, and the same contract over a local folder.</summary>
public sealed class S3StoreTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> Kinds => ["s3", "local"];

    private async Task<IResultsStore> StoreAsync(string kind) =>
        kind == "s3" ? (await S3Server.Shared.NewStoreAsync()).Store : new LocalResultsStore(_temp.Sub("store"));

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Objects_round_trip_list_in_key_order_move_and_delete(string kind)
    {
        var store = await StoreAsync(kind);
        var file = Path.Combine(_temp.Path, "f.txt");
        await File.WriteAllTextAsync(file, "file content");

        await store.PutFileAsync("a/index=1/x.txt", file, CancellationToken.None);
        await store.PutBytesAsync("a/index=12/y.txt", "bytes"u8.ToArray(), CancellationToken.None);
        await store.PutBytesAsync("b/z.txt", "other"u8.ToArray(), CancellationToken.None);

        Assert.Equal("file content", System.Text.Encoding.UTF8.GetString((await store.GetBytesAsync("a/index=1/x.txt", CancellationToken.None))!));
        Assert.Null(await store.GetBytesAsync("a/missing", CancellationToken.None));
        Assert.Equal([("a/index=1/x.txt", 12L)], await ListAsync(store, "a/index=1/"));
        Assert.Equal(["a/index=1/x.txt", "a/index=12/y.txt"], (await ListAsync(store, "a/index=1")).Select(o => o.Key));

        await store.MoveAsync("a/index=12/y.txt", "c/moved.txt", CancellationToken.None);
        await store.DeleteAsync("b/z.txt", CancellationToken.None);
        await store.DeleteAsync("b/never-was.txt", CancellationToken.None);

        Assert.Equal(["a/index=1/x.txt", "c/moved.txt"], (await ListAsync(store, "")).Select(o => o.Key));
        var downloaded = Path.Combine(_temp.Path, "down", "moved.txt");
        await store.DownloadAsync("c/moved.txt", downloaded, CancellationToken.None);
        Assert.Equal("bytes", await File.ReadAllTextAsync(downloaded));
    }

    [Fact]
    public async Task A_file_above_the_part_size_goes_up_in_parts_and_arrives_byte_for_byte()
    {
        var (store, uri) = await S3Server.Shared.NewStoreAsync(partSize: ResultsOptions.MinPartSizeBytes);
        var file = Path.Combine(_temp.Path, "big.bin");
        var content = new byte[(int)(2.5 * ResultsOptions.MinPartSizeBytes)];
        new Random(7).NextBytes(content);
        await File.WriteAllBytesAsync(file, content);

        await store.PutFileAsync("big/out.bin", file, CancellationToken.None);

        var (bucket, key) = StoreUri.ParseObject(uri + "/big/out.bin");
        using var client = S3Server.Shared.Client();
        var head = await client.GetObjectMetadataAsync(bucket, key);
        // A multipart object's ETag ends in -<parts>: three parts of 5 MiB, 5 MiB and 2.5 MiB.
        Assert.EndsWith("-3\"", head.ETag, StringComparison.Ordinal);
        Assert.Equal(content, await store.GetBytesAsync("big/out.bin", CancellationToken.None));
        var uploads = await client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = bucket });
        Assert.Empty(uploads.MultipartUploads ?? []);
    }

    [Fact]
    public async Task A_file_at_most_the_part_size_is_one_put()
    {
        var (store, uri) = await S3Server.Shared.NewStoreAsync();
        var file = Path.Combine(_temp.Path, "small.bin");
        await File.WriteAllBytesAsync(file, new byte[1000]);

        await store.PutFileAsync("small.bin", file, CancellationToken.None);

        var (bucket, key) = StoreUri.ParseObject(uri + "/small.bin");
        using var client = S3Server.Shared.Client();
        Assert.DoesNotContain("-", (await client.GetObjectMetadataAsync(bucket, key)).ETag, StringComparison.Ordinal);
    }

    public static TheoryData<string, int, bool> FailedFirstTries => new()
    {
        { "answered 500 after the body", 1000, false },
        { "answered 500 after the body", (int)(2.5 * ResultsOptions.MinPartSizeBytes), false },
        { "response cut after its first bytes", 1000, false },
        { "response cut after its first bytes", 1000, true },
        { "response cut after its first bytes", (int)(2.5 * ResultsOptions.MinPartSizeBytes), false },
        { "reset while the body is sent", 1000, false },
        { "reset while the body is sent", 1000, true },
        { "reset while the body is sent", (int)(2.5 * ResultsOptions.MinPartSizeBytes), false },
        { "answer lost after S3 stored it", 1000, false },
        { "answer lost after S3 stored it", (int)(2.5 * ResultsOptions.MinPartSizeBytes), false },
    };

    // The SDK retried these itself with the body it had already begun to read: with a trailing checksum its second send
    // threw ArgumentException (a key added twice to the trailer headers), which aborted the wrapper (CI, S3FaultTests);
    // and after a reset that came right after S3's 100 Continue, the first try's body copy, still running, read on from
    // the shared stream while the second try sent it: a part stored 72 KiB short and shifted, reported a success (CI,
    // this test; about one run in ten). The store now makes each try itself, each with its own stream. The race being
    // rare, the cut is repeated in several rounds.
    [Theory]
    [MemberData(nameof(FailedFirstTries))]
    public async Task A_put_whose_first_tries_fail_after_the_body_was_sent_arrives_whole_on_a_later_try(string failure, int size, bool fromMemory)
    {
        var (_, uri) = await S3Server.Shared.NewStoreAsync();
        var file = Path.Combine(_temp.Path, "retried.bin");
        var content = new byte[size];
        new Random(size).NextBytes(content);
        await File.WriteAllBytesAsync(file, content);
        var rounds = failure == "response cut after its first bytes" ? 4 : 1;
        for (var round = 0; round < rounds; round++)
        {
            // A proxy and a client per round: the faults meet new connections.
            await using var proxy = BatchRunner.Faults.Testing.FaultProxy.Start(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, new Uri(S3Server.Shared.Url).Port));
            var options = new ResultsOptions { Uri = uri, Region = S3Server.Region, EndpointUrl = $"http://127.0.0.1:{proxy.Port}", ForcePathStyle = true, PartSizeBytes = ResultsOptions.MinPartSizeBytes };
            using var store = S3ResultsStore.Create(options, StoreUri.Parse(uri));
            var key = $"retried-{round}.bin";
            switch (failure)
            {
                case "answered 500 after the body":
                    proxy.AnswerNext(2, BatchRunner.Faults.Testing.HttpAnswer.S3InternalError);
                    break;
                case "answer lost after S3 stored it":
                    // Path-style: every request of the store names its bucket first.
                    proxy.LoseAnswersTo("/" + StoreUri.Parse(uri).Bucket, 2);
                    break;
                case "reset while the body is sent":
                    var (bucket, objectKey) = StoreUri.ParseObject(uri + "/" + key);
                    proxy.CutBodyAfterBytes = Math.Min(64 * 1024, size / 2);
                    proxy.CutBodiesTo(size > ResultsOptions.MinPartSizeBytes ? $"/{bucket}/{objectKey}?partNumber=" : $"/{bucket}/{objectKey}", 2);
                    break;
                default:
                    proxy.TruncateNext(2);
                    break;
            }

            if (fromMemory)
            {
                await store.PutBytesAsync(key, content, CancellationToken.None);
            }
            else
            {
                await store.PutFileAsync(key, file, CancellationToken.None);
            }

            Assert.True(proxy.Injected.Values.Sum() >= 2, $"{failure}: {proxy.Injected.Values.Sum()} faults injected, {proxy.Connections} connections");
            Assert.Equal(content, await store.GetBytesAsync(key, CancellationToken.None));
        }
    }

    private static readonly BatchRunner.Faults.Testing.HttpAnswer BadDigest = new(400, "Bad Request", "application/xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match what we received.</Message></Error>");

    private static readonly BatchRunner.Faults.Testing.HttpAnswer AccessDenied = new(403, "Forbidden", "application/xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");

    [Fact]
    public async Task A_body_s3_says_arrived_damaged_is_sent_again_and_a_refusal_is_not()
    {
        var (_, uri) = await S3Server.Shared.NewStoreAsync();
        await using var proxy = BatchRunner.Faults.Testing.FaultProxy.Start(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, new Uri(S3Server.Shared.Url).Port));
        var options = new ResultsOptions { Uri = uri, Region = S3Server.Region, EndpointUrl = $"http://127.0.0.1:{proxy.Port}", ForcePathStyle = true };
        using var store = S3ResultsStore.Create(options, StoreUri.Parse(uri));

        proxy.AnswerNext(1, BadDigest);
        await store.PutBytesAsync("row.json", "{\"index\":7}"u8.ToArray(), CancellationToken.None);

        Assert.Equal("{\"index\":7}"u8.ToArray(), await store.GetBytesAsync("row.json", CancellationToken.None));
        Assert.Equal(1, proxy.Injected.GetValueOrDefault(BatchRunner.Faults.Testing.FaultKind.Answered));
        // The MD5 of the body (openssl md5 -binary | base64), which real S3 checks the body it got against.
        Assert.Contains("Content-MD5: FisLIbUjz788U6I+LDg6JQ==", proxy.AnsweredRequestHeads.Single(), StringComparison.OrdinalIgnoreCase);

        proxy.AnswerNext(3, AccessDenied);
        var refused = await Assert.ThrowsAsync<Amazon.S3.AmazonS3Exception>(() => store.PutBytesAsync("other.json", "{}"u8.ToArray(), CancellationToken.None));
        Assert.Equal("AccessDenied", refused.ErrorCode);
        Assert.Equal(2, proxy.Injected.GetValueOrDefault(BatchRunner.Faults.Testing.FaultKind.Answered));
    }

    [Fact]
    public async Task Listing_follows_continuation_past_a_thousand_keys()
    {
        var (store, _) = await S3Server.Shared.NewStoreAsync();
        await Parallel.ForEachAsync(Enumerable.Range(0, 1005), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, token) =>
            await store.PutBytesAsync($"many/{i:D5}", "x"u8.ToArray(), token));

        var keys = (await ListAsync(store, "many/")).Select(o => o.Key).ToList();

        Assert.Equal(Enumerable.Range(0, 1005).Select(i => $"many/{i:D5}"), keys);
    }

    [Fact]
    public void Store_uris_are_parsed_and_bad_ones_named()
    {
        Assert.Equal(new StoreUri("bucket", "a/b", null), StoreUri.Parse("s3://bucket/a/b/"));
        Assert.Equal(new StoreUri("bucket", "", null), StoreUri.Parse("s3://bucket"));
        Assert.Equal("/tmp/x", StoreUri.Parse("/tmp/x").LocalPath);
        Assert.Contains("names no bucket", Assert.Throws<FormatException>(() => StoreUri.Parse("s3:///prefix")).Message, StringComparison.Ordinal);
        Assert.Contains("expected s3://bucket/prefix or a local folder", Assert.Throws<FormatException>(() => StoreUri.Parse("gs://b/p")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Results_options_name_a_bad_uri_and_endpoint()
    {
        var errors = new List<System.ComponentModel.DataAnnotations.ValidationResult>();
        var options = new ResultsOptions { Uri = "s3://", EndpointUrl = "not a url" };

        System.ComponentModel.DataAnnotations.Validator.TryValidateObject(options, new(options), errors, validateAllProperties: true);

        Assert.Equal(
            ["EndpointUrl: \"not a url\" is not an absolute URL", "Uri: results store \"s3://\": the S3 URI names no bucket"],
            errors.Select(e => e.ErrorMessage).Order(StringComparer.Ordinal));
    }

    private static async Task<List<(string Key, long Size)>> ListAsync(IResultsStore store, string prefix)
    {
        var found = new List<(string, long)>();
        await foreach (var item in store.ListAsync(prefix, CancellationToken.None))
        {
            found.Add((item.Key, item.Size));
        }

        return found;
    }
}
