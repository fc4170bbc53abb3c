using Amazon.SQS.Model;
using BatchRunner.Kubernetes.Testing;
using Xunit;
using Xunit.Abstractions;
using static BatchRunner.Operator.Tests.Cluster;

namespace BatchRunner.Operator.Tests;

/// <summary>The queue door into a cluster: SQS messages become BatchJob custom resources once, then Jobs.</summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class QueueDoorTests(OperatorFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private QueueEmulator _queues = null!;
    private ControllerProcess? _controller;
    private PodSimulator? _pods;
    private string _ns = "";

    public async Task InitializeAsync()
    {
        _ns = "q-" + Guid.NewGuid().ToString("N")[..10];
        await fixture.ControlPlane.CreateNamespaceAsync(_ns);
        _queues = await QueueEmulator.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_controller is not null)
        {
            output.WriteLine(_controller.Log);
            await _controller.DisposeAsync();
        }

        if (_pods is not null)
        {
            await _pods.DisposeAsync();
        }

        await _queues.DisposeAsync();
    }

    [Fact]
    public async Task A_queued_batchjob_becomes_one_custom_resource_and_its_job_runs_while_a_forbidden_one_is_dead_lettered()
    {
        var queue = (await _queues.Client.CreateQueueAsync($"requests-{_ns}")).QueueUrl;
        var deadLetter = (await _queues.Client.CreateQueueAsync($"refused-{_ns}")).QueueUrl;
        _pods = PodSimulator.Start(fixture.Admin, new PodSimulatorOptions { Namespace = _ns });
        _controller = ControllerProcess.Start(
            fixture.ControllerKubeconfig, "queue-replica", QueueEmulator.AwsEnvironment,
            $"--BatchRunner:LeaderElection:LeaseName=lease-{_ns}",
            "--BatchRunner:Sqs:Enabled=true", $"--BatchRunner:Sqs:QueueUrl={queue}", $"--BatchRunner:Sqs:DeadLetterQueueUrl={deadLetter}",
            $"--BatchRunner:Sqs:EndpointUrl={_queues.Url}", "--BatchRunner:Sqs:WaitTimeSeconds=1",
            $"--BatchRunner:Sqs:Tenants:AllowedNamespaces:0={_ns}", "--BatchRunner:Sqs:Tenants:AllowedImages:0=busybox:*");

        var request = BatchJobYaml(_ns, "queued");
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, request));
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, request));
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, BatchJobYaml("default", "trespasser")));

        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "queued")) == "Succeeded", TimeSpan.FromSeconds(90), "the queued BatchJob succeeds");
        var refused = new List<Message>();
        await Eventually.TrueAsync(
            async () =>
            {
                var received = await _queues.Client.ReceiveMessageAsync(new ReceiveMessageRequest(deadLetter) { MessageAttributeNames = ["All"], WaitTimeSeconds = 1 });
                refused.AddRange(received.Messages ?? []);
                return refused.Count > 0;
            },
            TimeSpan.FromSeconds(30), "the forbidden request is dead-lettered");

        var batchJob = await BatchJobAsync(fixture.Admin, _ns, "queued");
        Assert.True(batchJob!.Value.GetProperty("metadata").GetProperty("annotations").TryGetProperty("batchrunner.io/sqs-message-id", out _));
        Assert.Single(await JobsAsync(fixture.Admin, _ns, "queued"));
        Assert.Null(await BatchJobAsync(fixture.Admin, "default", "trespasser"));
        var reason = Assert.Single(refused).MessageAttributes["BatchRunnerRejectReason"].StringValue;
        Assert.Contains("namespace", reason, StringComparison.OrdinalIgnoreCase);
        var left = await _queues.Client.GetQueueAttributesAsync(new GetQueueAttributesRequest(queue, ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]));
        Assert.Equal((0, 0), (left.ApproximateNumberOfMessages, left.ApproximateNumberOfMessagesNotVisible));
    }
}
