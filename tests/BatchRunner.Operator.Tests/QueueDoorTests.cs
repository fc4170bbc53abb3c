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
        var request = BatchJobYaml(_ns, "queued");
        var (queue, deadLetter) = await StartAsync();
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, request));
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, request));
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, BatchJobYaml("default", "trespasser")));

        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "queued")) == "Succeeded", TimeSpan.FromSeconds(90), "the queued BatchJob succeeds");
        var refused = await DeadLetteredAsync(deadLetter, "the forbidden request is dead-lettered");

        var batchJob = await BatchJobAsync(fixture.Admin, _ns, "queued");
        Assert.True(batchJob!.Value.GetProperty("metadata").GetProperty("annotations").TryGetProperty("batchrunner.io/sqs-message-id", out _));
        Assert.Single(await JobsAsync(fixture.Admin, _ns, "queued"));
        Assert.Null(await BatchJobAsync(fixture.Admin, "default", "trespasser"));
        var reason = Assert.Single(refused).MessageAttributes["BatchRunnerRejectReason"].StringValue;
        Assert.Contains("namespace", reason, StringComparison.OrdinalIgnoreCase);
        var left = await _queues.Client.GetQueueAttributesAsync(new GetQueueAttributesRequest(queue, ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]));
        Assert.Equal((0, 0), (left.ApproximateNumberOfMessages, left.ApproximateNumberOfMessagesNotVisible));
    }

    [Fact]
    public async Task A_queued_rerun_request_reruns_its_batchjob_once_and_one_for_a_batchjob_that_is_not_there_is_dead_lettered()
    {
        var (queue, deadLetter) = await StartAsync();
        var document = BatchJobYaml(_ns, "sweep");
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, document));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "sweep")) == "Succeeded", TimeSpan.FromSeconds(90), "the queued BatchJob succeeds");

        // The same document with the rerun annotation, delivered twice (the tag makes both one request).
        var rerun = document.Replace($"namespace: {_ns}", $"namespace: {_ns}, annotations: {{batchrunner.io/rerun: \"1,3@from-the-queue\"}}", StringComparison.Ordinal);
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, rerun));
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, rerun));
        await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, rerun.Replace("name: sweep", "name: absent", StringComparison.Ordinal)));

        await Eventually.TrueAsync(async () => Status(await BatchJobAsync(fixture.Admin, _ns, "sweep"), "rerun")?.GetProperty("number").GetInt32() == 1
            && Phase(await BatchJobAsync(fixture.Admin, _ns, "sweep")) == "Succeeded", TimeSpan.FromSeconds(90), "the rerun is taken and succeeds");
        var refused = await DeadLetteredAsync(deadLetter, "the rerun of a BatchJob that is not there is dead-lettered");

        var batchJob = await BatchJobAsync(fixture.Admin, _ns, "sweep");
        Assert.Equal(("1,3@from-the-queue", "1,3"), (Status(batchJob, "rerun")!.Value.GetProperty("request").GetString(), Status(batchJob, "rerun")!.Value.GetProperty("indexes").GetString()));
        Assert.Equal(["sweep", "sweep-rerun-1"], (await JobsAsync(fixture.Admin, _ns, "sweep")).Select(j => j.Metadata.Name).Order());
        Assert.Contains("no such BatchJob exists", Assert.Single(refused).MessageAttributes["BatchRunnerRejectReason"].StringValue, StringComparison.Ordinal);
    }

    /// <summary>What reached the dead-letter queue, once something did.</summary>
    private async Task<List<Message>> DeadLetteredAsync(string deadLetter, string what)
    {
        var refused = new List<Message>();
        await Eventually.TrueAsync(
            async () =>
            {
                var received = await _queues.Client.ReceiveMessageAsync(new ReceiveMessageRequest(deadLetter) { MessageAttributeNames = ["All"], WaitTimeSeconds = 1 });
                refused.AddRange(received.Messages ?? []);
                return refused.Count > 0;
            },
            TimeSpan.FromSeconds(30), what);
        return refused;
    }

    private async Task<(string Queue, string DeadLetter)> StartAsync()
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
        return (queue, deadLetter);
    }
}
