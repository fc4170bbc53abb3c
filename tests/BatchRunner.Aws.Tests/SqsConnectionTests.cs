using Amazon.SQS.Model;
using BatchRunner.Aws.Sqs;
using BatchRunner.Aws.Tests.Support;

namespace BatchRunner.Aws.Tests;

[CollectionDefinition(nameof(ProcessEnvironment), DisableParallelization = true)]
public sealed class ProcessEnvironment;

/// <summary>The SDK's own conventions for where SQS is: these tests change the process environment, so run alone.</summary>
[Collection(nameof(ProcessEnvironment))]
public sealed class SqsConnectionTests
{
    [Theory]
    [InlineData("AWS_ENDPOINT_URL_SQS")]
    [InlineData("AWS_ENDPOINT_URL")]
    public async Task Without_an_endpoint_in_the_settings_the_standard_endpoint_variables_are_honoured(string variable)
    {
        var queue = await Fauxqs.Shared.CreateQueueAsync($"endpoint-{Guid.NewGuid():N}");
        Environment.SetEnvironmentVariable(variable, Fauxqs.Shared.Url);
        try
        {
            using var client = SqsClientFactory.Create(new SqsConnection());
            var sent = await client.SendMessageAsync(new SendMessageRequest(queue, "hello"), default);

            Assert.False(string.IsNullOrEmpty(sent.MessageId));
            Assert.Equal((1, 0), await Fauxqs.Shared.CountAsync(queue));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void What_a_connection_logs_names_where_and_never_credentials()
    {
        var text = new SqsConnection("eu-west-1", "http://127.0.0.1:9").ToString();

        Assert.Equal("endpoint http://127.0.0.1:9, region eu-west-1", text);
        Assert.DoesNotContain("batchrunner-test-secret", new SqsConnection().ToString(), StringComparison.Ordinal);
    }
}
