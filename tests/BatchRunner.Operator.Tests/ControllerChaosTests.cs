using Amazon.SQS.Model;
using BatchRunner.Core.Runs;
using BatchRunner.Kubernetes.Testing;
using Xunit;
using Xunit.Abstractions;
using static BatchRunner.Operator.Tests.Cluster;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// Chaos of the controller itself: two replicas, the leader killed with SIGKILL at random moments (seeded) and replaced,
/// again and again, while BatchJobs arrive through kubectl and SQS and finished runs are compacted; once it stops, a
/// leader takes over and every promise holds.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class ControllerChaosTests(OperatorFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(120);

    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<ControllerProcess> _replicas = [];
    private QueueEmulator _queues = null!;
    private string _ns = "";
    private string _store = "";

    public async Task InitializeAsync()
    {
        _ns = "ch-" + Guid.NewGuid().ToString("N")[..10];
        await fixture.ControlPlane.CreateNamespaceAsync(_ns);
        _queues = await QueueEmulator.StartAsync();
        _store = Directory.CreateTempSubdirectory("chaos-store-").FullName;
    }

    public async Task DisposeAsync()
    {
        foreach (var replica in _replicas)
        {
            output.WriteLine($"--- controller {replica.Identity} log (last lines) ---\n{string.Join('\n', replica.Log.Split('\n').TakeLast(15))}");
            await replica.DisposeAsync();
        }

        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }

        await _queues.DisposeAsync();
        Directory.Delete(_store, recursive: true);
    }

    [Fact]
    public async Task Killing_the_leader_again_and_again_loses_no_request_doubles_no_job_and_every_run_is_compacted_once()
    {
        var queue = (await _queues.Client.CreateQueueAsync(new CreateQueueRequest($"requests-{_ns}") { Attributes = new() { ["VisibilityTimeout"] = "5" } })).QueueUrl;
        var deadLetter = (await _queues.Client.CreateQueueAsync($"refused-{_ns}")).QueueUrl;
        // Each pod leaves what the results wrapper would: its ledger row and a result line, under its completion index.
        _owned.Add(PodSimulator.Start(fixture.Admin, new PodSimulatorOptions
        {
            Namespace = _ns,
            NumberCompletionIndexes = true,
            RunningFor = TimeSpan.FromMilliseconds(500),
            Outcome = pod =>
            {
                WriteAttempt(pod.Metadata.Labels[WorkloadLabels.BatchJob], pod.Metadata.Labels["batchrunner.io/run"],
                    int.Parse(pod.Metadata.Annotations[WorkloadLabels.CompletionIndexAnnotation], System.Globalization.CultureInfo.InvariantCulture));
                return PodOutcome.Succeed;
            },
        }));
        StartReplica(queue, deadLetter);
        StartReplica(queue, deadLetter);

        // 70 s: BatchJobs arrive by both doors while the leader is killed every 4-9 s (seeded) and a new replica starts.
        var random = new Random(20261206);
        var names = new List<string>();
        var kills = 0;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(70);
        var arrivals = Task.Run(async () =>
        {
            for (var i = 0; i < 8; i++)
            {
                var applied = $"applied-{i}";
                var queued = $"queued-{i}";
                names.Add(applied);
                names.Add(queued);
                await fixture.ApplyAsync(BatchJobYaml(_ns, applied));
                var body = BatchJobYaml(_ns, queued);
                await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, body));
                await _queues.Client.SendMessageAsync(new SendMessageRequest(queue, body));
                await Task.Delay(TimeSpan.FromSeconds(7));
            }
        });
        while (DateTime.UtcNow < until)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(random.Next(4000, 9000)));
            foreach (var replica in _replicas.Where(r => !r.HasExited).ToList())
            {
                if (await LeadsAsync(replica))
                {
                    await replica.KillAsync();
                    kills++;
                    StartReplica(queue, deadLetter);
                }
            }
        }

        await arrivals;
        output.WriteLine($"leaders killed with SIGKILL: {kills}; replicas started: {_replicas.Count}");
        Assert.True(kills >= 5, $"only {kills} leaders were killed");

        await Eventually.TrueAsync(
            async () => (await Task.WhenAll(names.Select(n => BatchJobAsync(fixture.Admin, _ns, n)))).All(b =>
                Phase(b) is "Succeeded" or "Failed" && Condition(b, "ResultsCompacted")?.GetProperty("status").GetString() == "True")
                && await FaultRig.InFlightAsync(_queues, queue) == 0,
            Recovery, "every BatchJob finishes and is compacted, and the queue is empty, once the leader is left alone");

        Assert.Equal(names.Count, await FaultRig.BatchJobCountAsync(fixture, _ns));
        foreach (var name in names)
        {
            var batchJob = await BatchJobAsync(fixture.Admin, _ns, name);
            Assert.Equal(("Succeeded", 6), (Phase(batchJob), Status(batchJob, "succeeded")!.Value.GetInt32()));
            Assert.Equal(6, Assert.Single(await JobsAsync(fixture.Admin, _ns, name)).Status.Succeeded);

            // Compacted once, with every ledger row once: six attempts and six result rows.
            var runId = Status(batchJob, "runId")!.Value.GetString()!;
            Assert.StartsWith($"run {runId}: 6 attempt(s) and 6 result row(s) compacted",
                Condition(batchJob, "ResultsCompacted")!.Value.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal(6, Directory.GetDirectories(Path.Combine(_store, $"batchjob={name}", $"run={runId}"), "index=*").Length);
        }

        Assert.Empty((await _queues.Client.ReceiveMessageAsync(new ReceiveMessageRequest(deadLetter) { WaitTimeSeconds = 1 })).Messages ?? []);
    }

    /// <summary>What the results wrapper leaves for one index: its ledger row and a result line.</summary>
    private void WriteAttempt(string batchJob, string run, int index)
    {
        var attempt = Path.Combine(_store, $"batchjob={batchJob}", $"run={run}", $"index={index}", "attempt=1");
        Directory.CreateDirectory(Path.Combine(attempt, "output"));
        File.WriteAllText(Path.Combine(attempt, "output", "rows.jsonl"), $"{{\"mean_wait\": {index}.5}}\n");
        File.WriteAllText(Path.Combine(attempt, "ledger.json"), $$"""
            {"batchjob": "{{batchJob}}", "namespace": "{{_ns}}", "run": "{{run}}", "index": {{index}}, "attempt": 1, "repeat": 0, "seed": {{index}},
             "params": {"rate": 0.5, "servers": {{index}}}, "status": "succeeded", "exit_code": 0, "started_at": "2026-11-22T10:00:00.000000Z",
             "finished_at": "2026-11-22T10:00:01.000000Z", "duration_seconds": 1.0, "backend": "kubernetes", "output_files": 1, "output_bytes": 18,
             "output_rows": 1, "output_malformed": 0}
            """);
    }

    private void StartReplica(string queue, string deadLetter) => _replicas.Add(ControllerProcess.Start(
        fixture.ControllerKubeconfig, $"chaos-{_replicas.Count}", QueueEmulator.AwsEnvironment,
        $"--BatchRunner:LeaderElection:LeaseName=lease-{_ns}",
        "--BatchRunner:LeaderElection:LeaseDurationSeconds=4", "--BatchRunner:LeaderElection:RenewDeadlineSeconds=3", "--BatchRunner:LeaderElection:RetryPeriodSeconds=1",
        "--BatchRunner:Results:Uri=" + _store,
        "--BatchRunner:Sqs:Enabled=true", $"--BatchRunner:Sqs:QueueUrl={queue}", $"--BatchRunner:Sqs:DeadLetterQueueUrl={deadLetter}",
        $"--BatchRunner:Sqs:EndpointUrl={_queues.Url}", "--BatchRunner:Sqs:WaitTimeSeconds=1",
        $"--BatchRunner:Sqs:Tenants:AllowedNamespaces:0={_ns}", "--BatchRunner:Sqs:Tenants:AllowedImages:0=busybox:*"));

    private static async Task<bool> LeadsAsync(ControllerProcess replica)
    {
        try
        {
            return await replica.MetricAsync("batchrunner_leader") == 1;
        }
        catch (HttpRequestException)
        {
            return false; // still starting
        }
        catch (TaskCanceledException)
        {
            return false;
        }
    }
}
