using System.Text.Json;
using Amazon.Runtime;
using BatchRunner.Aws.Protocol;

namespace BatchRunner.Aws.Tests.Protocol;

/// <summary>Requests signed by <see cref="AwsJsonClient"/>, as received on the wire, against botocore's SigV4Auth.</summary>
public sealed class SigV4SignerTests
{
    private static readonly DateTimeOffset SignedAt = new(2026, 11, 22, 15, 26, 0, TimeSpan.Zero);

    public static TheoryData<string, string?> Credentials => new()
    {
        { "long-term keys", null },
        { "temporary keys with a session token", "FwoGZXIvYXdzEJr//////////wEaDH+session/token==" },
    };

    [Theory]
    [MemberData(nameof(Credentials))]
    public async Task A_rest_json_request_carries_botocores_signature(string why, string? token)
    {
        _ = why;
        await AssertSignedLikeBotocoreAsync(token, client => client.SendRestJsonAsync<object, JsonElement>(
            HttpMethod.Post, "/v1/submitjob", new { jobName = "sweep-0", jobQueue = "queue", arrayProperties = new { size = 10 } }, default));
    }

    [Theory]
    [MemberData(nameof(Credentials))]
    public async Task A_json11_request_with_its_target_carries_botocores_signature(string why, string? token)
    {
        _ = why;
        await AssertSignedLikeBotocoreAsync(token, client => client.SendJson11Async<object, JsonElement>(
            "AmazonAthena.StartQueryExecution", new { QueryString = "SELECT 1 — ünïcode", WorkGroup = "primary" }, default));
    }

    [Fact]
    public async Task A_path_holding_an_encoded_arn_is_signed_like_botocore()
    {
        var arn = Uri.EscapeDataString("arn:aws:batch:eu-west-1:123456789012:job/abc def");
        await AssertSignedLikeBotocoreAsync(null, client => client.SendRestJsonAsync<object, JsonElement>(
            HttpMethod.Post, "/v1/tags/" + arn, new { tags = new Dictionary<string, string> { ["a"] = "b" } }, default));
    }

    [Fact]
    public void A_changed_body_changes_the_signature()
    {
        var credentials = new ImmutableCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", null);
        string Sign(string body)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "https://batch.eu-west-1.amazonaws.com/v1/submitjob")
            {
                Content = new StringContent(body),
            };
            SigV4Signer.Sign(request, System.Text.Encoding.UTF8.GetBytes(body), credentials, "eu-west-1", "batch", SignedAt);
            return request.Headers.GetValues("Authorization").Single();
        }

        Assert.NotEqual(Sign("{\"a\":1}"), Sign("{\"a\":2}"));
    }

    private static async Task AssertSignedLikeBotocoreAsync(string? token, Func<AwsJsonClient, Task> call)
    {
        const string accessKey = "AKIDEXAMPLE";
        const string secretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        await using var server = await StubHttpServer.StartAsync(_ => StubAnswer.Ok("{}"));
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(SignedAt);
        using var client = new AwsJsonClient(
            new AwsServiceOptions { ServiceId = "batch", SigningName = "batch", Region = "eu-west-1", EndpointUrl = server.Url.ToString() },
            TestWireJson.CamelCase(),
            credentials: new StaticAwsCredentialSource(new ImmutableCredentials(accessKey, secretKey, token)),
            time: time);

        await call(client);

        var received = Assert.Single(server.Requests);
        var authorization = received.Header("Authorization")!;
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/eu-west-1/batch/aws4_request", authorization, StringComparison.Ordinal);
        Assert.Equal(token, received.Header("X-Amz-Security-Token"));
        var signed = Botocore.SignedHeaders(authorization, received);
        Assert.Contains("host", signed.Keys);
        Assert.Contains("x-amz-date", signed.Keys);
        Assert.Contains("content-type", signed.Keys);
        Assert.Equal(token is not null, signed.ContainsKey("x-amz-security-token"));
        var expected = await Botocore.SignAsync(
            received.Method, new Uri(server.Url, received.PathAndQuery), signed, received.Body,
            accessKey, secretKey, token, "eu-west-1", "batch", "20261122T152600Z");
        Assert.Equal(expected, authorization);
    }
}
