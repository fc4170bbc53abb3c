using Amazon.SQS.Model;
using BatchRunner.Faults.Testing;
using BatchRunner.Kubernetes.Testing;
using Xunit;
using Xunit.Abstractions;
using static BatchRunner.Operator.Tests.Cluster;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// The fault tier for the queue door: the controller reaches SQS (fauxqs) and the API server through fault proxies
/// while requests arrive, each delivered twice (SQS delivers at least once); once the faults stop, every request is one
/// BatchJob with one Job, no message is left in flight, and nothing was dead-lettered for a fault.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class QueueFaultTests(OperatorFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>How long after the last fault every request must have become a finished BatchJob and left the queue.</summary>
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(120);

    private readonly List<IAsyncDisposable> _owned = [];
    private QueueEmulator _queues = null!;
    private string _ns = "";

    public async Task InitializeAsync()
    {
        _ns = "qf-" + Guid.NewGuid().ToString("N")[..10];
        await fixture.ControlPlane.CreateNamespaceAsync(_ns);
        _queues = await QueueEmulator.StartAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }

        await _queues.DisposeAsync();
    }

    [Fact]
    public async Task Under_faults_of_sqs_and_the_api_server_each_request_becomes_one_batchjob_and_no_message_is_lost_stuck_or_dead_lettered()
    {
        // A short visibility timeout: a message whose delete was cut comes back within the recovery time.
        var queue = (await _queues.Client.CreateQueueAsync(new CreateQueueRequest($"requests-{_ns}") { Attributes = new() { ["VisibilityTimeout"] = "5" } })).QueueUrl;
        var deadLetter = (await _queues.Client.CreateQueueAsync($"refused-{_ns}")).QueueUrl;
        var sqs = FaultRig.ProxyFor(_queues.Url);
        var api = FaultRig.ApiServerProxy(fixture);
        _owned.Add(sqs);
        _owned.Add(api);
        _owned.Add(PodSimulator.Start(fixture.Admin, new PodSimulatorOptions { Namespace = _ns }));
        var controller = ControllerProcess.Start(
            await FaultRig.KubeconfigThroughAsync(fixture, api, _ns), "queue-faults", QueueEmulator.AwsEnvironment,
            $"--BatchRunner:LeaderElection:LeaseName=lease-{_ns}",
            "--BatchRunner:Sqs:Enabled=true", $"--BatchRunner:Sqs:QueueUrl={queue}", $"--BatchRunner:Sqs:DeadLetterQueueUrl={deadLetter}",
            $"--BatchRunner:Sqs:EndpointUrl=http://127.0.0.1:{sqs.Port}", "--BatchRunner:Sqs:WaitTimeSeconds=1",
            $"--BatchRunner:Sqs:Tenants:AllowedNamespaces:0={_ns}", "--BatchRunner:Sqs:Tenants:AllowedImages:0=busybox:*");
        _owned.Add(new FaultRig.Logged(controller, output));

        // 45 s of faults on both servers (their own seeds) while ten requests arrive, each twice.
        var faults = Task.WhenAll(
            FaultSchedule.RunAsync(sqs, TimeSpan.FromSeconds(45), seed: 19, answers: [HttpAnswer.JsonServiceUnavailable, HttpAnswer.TooManyRequests]),
            FaultSchedule.RunAsync(api, TimeSpan.FromSeconds(45), seed: 2026));
        var names = Enumerable.Range(0, 10).Select(i => $"queued-{i}").ToList();
        foreach (var name in names)
        {
            var body = BatchJobYaml(_ns, name);
            await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, body));
            await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, body));
            await Task.Delay(TimeSpan.FromSeconds(4));
        }

        await faults;
        output.WriteLine("faults injected: " + FaultRig.Report("SQS", sqs) + "; " + FaultRig.Report("API server", api));

        await Eventually.TrueAsync(
            async () => (await Task.WhenAll(names.Select(n => BatchJobAsync(fixture.Admin, _ns, n)))).All(b => Phase(b) is "Succeeded" or "Failed")
                && await FaultRig.InFlightAsync(_queues, queue) == 0,
            Recovery, "every request is a finished BatchJob and the queue is empty once the faults stop");

        // One BatchJob per request (none from a redelivery), one Job each, every index counted once.
        Assert.Equal(names.Count, await FaultRig.BatchJobCountAsync(fixture, _ns));
        foreach (var name in names)
        {
            var batchJob = await BatchJobAsync(fixture.Admin, _ns, name);
            Assert.Equal(("Succeeded", 6), (Phase(batchJob), Status(batchJob, "succeeded")!.Value.GetInt32()));
            Assert.Equal(6, Assert.Single(await JobsAsync(fixture.Admin, _ns, name)).Status.Succeeded);
        }

        // Nothing was refused for a fault: a request the door could not take is retried, not dead-lettered.
        Assert.Empty((await _queues.Client.ReceiveMessageAsync(new ReceiveMessageRequest(deadLetter) { WaitTimeSeconds = 1 })).Messages ?? []);
        Assert.False(controller.HasExited, "the controller exited");
        Assert.True(sqs.Injected.Values.Sum() + api.Injected.Values.Sum() >= 20, "the schedules injected faults");
        Assert.True(sqs.Injected.GetValueOrDefault(FaultKind.Answered) > 0, "SQS answered with errors");
        Assert.DoesNotContain(QueueEmulator.AwsEnvironment["AWS_SECRET_ACCESS_KEY"], controller.Log, StringComparison.Ordinal);
        Assert.DoesNotContain(await FaultRig.ControllerTokenAsync(fixture), controller.Log, StringComparison.Ordinal);
    }
}
