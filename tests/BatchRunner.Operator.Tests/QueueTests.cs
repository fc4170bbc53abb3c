using System.Text.Json;
using BatchRunner.Kubernetes.Testing;
using Xunit;
using Xunit.Abstractions;
using static BatchRunner.Operator.Tests.Cluster;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// Queues on a real control plane: two namespaces share a queue with a quota; what the scheduler admits shows as
/// Job parallelism, waiting BatchJobs say why and their place, and a small sweep arriving behind a large one
/// finishes first.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class QueueTests(OperatorFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(90);
    private readonly List<IAsyncDisposable> _owned = [];
    private ControllerProcess? _controller;
    private readonly string _id = Guid.NewGuid().ToString("N")[..8];
    private string TeamA => "qa-" + _id;
    private string TeamB => "qb-" + _id;
    private string Queue => "research-" + _id;

    public async Task InitializeAsync()
    {
        await fixture.ControlPlane.CreateNamespaceAsync(TeamA);
        await fixture.ControlPlane.CreateNamespaceAsync(TeamB);
    }

    public async Task DisposeAsync()
    {
        if (_controller is not null)
        {
            output.WriteLine($"--- controller log ---\n{_controller.Log}");
            await _controller.DisposeAsync();
        }

        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }

        await fixture.TryKubectlAsync("delete", "queue", Queue, "--ignore-not-found");
    }

    [Fact]
    public async Task Two_tenants_share_a_queue_quota_the_small_sweep_overtakes_and_every_waiting_one_says_why()
    {
        // Pods take a moment to start and two seconds to run, as real ones would.
        foreach (var ns in new[] { TeamA, TeamB })
        {
            _owned.Add(PodSimulator.Start(fixture.Admin, new PodSimulatorOptions { Namespace = ns, PendingFor = TimeSpan.FromMilliseconds(500), RunningFor = TimeSpan.FromSeconds(2) }));
        }

        await fixture.ApplyAsync($"""
            apiVersion: batchrunner.io/v1alpha1
            kind: Queue
            metadata: {"{"}name: {Queue}{"}"}
            spec:
              backends: [kubernetes]
              quotas: {"{"}kubernetes: {"{"}indexes: 2{"}"}{"}"}
            """);
        _controller = ControllerProcess.Start(fixture.ControllerKubeconfig, "replica-a");

        // team-a's large sweep: 12 indexes, 4 at once wanted, 2 admitted (the quota).
        await fixture.ApplyAsync(BatchJobYaml(TeamA, "large", $"queue: {Queue}", sweep: "{grid: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}}").Replace("parallelism: 2", "parallelism: 4"));
        await Eventually.TrueAsync(async () => (await JobsAsync(fixture.Admin, TeamA, "large")).SingleOrDefault()?.Spec.Parallelism == 2
            && QueueField(await BatchJobAsync(fixture.Admin, TeamA, "large"), "allowance")?.GetInt32() == 2, Converge,
            "the large sweep's Job runs at the queue's quota, 2, and its status says so");
        var large = await BatchJobAsync(fixture.Admin, TeamA, "large");
        Assert.Equal((Queue, 2, 4), (QueueField(large, "name")!.Value.GetString(), QueueField(large, "allowance")!.Value.GetInt32(), QueueField(large, "wanted")!.Value.GetInt32()));
        Assert.Equal(("False", "QuotaExhausted"), (Condition(large, "Admitted")?.GetProperty("status").GetString(), Condition(large, "Admitted")?.GetProperty("reason").GetString()));

        // team-b's small sweep arrives: it waits first in line, then takes indexes as team-a's finish.
        await fixture.ApplyAsync(BatchJobYaml(TeamB, "small", $"queue: {Queue}", sweep: "{grid: {n: [1, 2]}}"));
        await Eventually.TrueAsync(async () => QueueField(await BatchJobAsync(fixture.Admin, TeamB, "small"), "name")?.GetString() == Queue, Converge,
            "the small sweep has a place in the queue");
        var (shown, listed) = (await CliAsync("queue", "show", Queue, "--cluster"), await CliAsync("queue", "list", "--cluster"));
        Assert.Contains($"Queue {Queue} on kubernetes:", shown, StringComparison.Ordinal);
        Assert.Contains($"{TeamB}/small", shown, StringComparison.Ordinal);
        Assert.Matches($@"{Queue}\s+kubernetes\s+", listed);
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, TeamB, "small")) == "Succeeded", Converge, "the small sweep succeeds");
        var small = await BatchJobAsync(fixture.Admin, TeamB, "small");
        large = await BatchJobAsync(fixture.Admin, TeamA, "large");
        Assert.NotEqual("Succeeded", Phase(large));
        // Events are written apart from the reconcile: wait for them rather than race them.
        await Eventually.TrueAsync(async () => (await EventsAsync(fixture.Admin, TeamB, "small")).Any(e => e.Reason is "Admitted" or "Dispatched"), Converge, "small's Admitted or Dispatched event");

        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, TeamA, "large")) == "Succeeded", Converge, "the large sweep succeeds");
        small = await BatchJobAsync(fixture.Admin, TeamB, "small");
        large = await BatchJobAsync(fixture.Admin, TeamA, "large");
        Assert.True(Status(small, "completionTime")!.Value.GetDateTimeOffset() < Status(large, "completionTime")!.Value.GetDateTimeOffset(), "the small sweep finished first");
        Assert.Equal("True", Condition(large, "Admitted")?.GetProperty("status").GetString());

        // The queue says what it holds (its status is written by the scheduler's next cycle); kubectl shows it.
        var table = "";
        await Eventually.TrueAsync(async () => System.Text.RegularExpressions.Regex.IsMatch(table = await fixture.KubectlAsync("get", "queues", Queue), $@"{Queue}\s+kubernetes\s+0\s+0\s+0\s+"),
            TimeSpan.FromSeconds(15), "the queue shows nothing pending, admitted or waiting");
        Assert.Contains("True", table, StringComparison.Ordinal);
        var metrics = (await _controller.GetAsync("/metrics")).Body;
        Assert.Contains($"batchrunner_scheduler_cycle_duration_seconds_count", metrics, StringComparison.Ordinal);
        Assert.Matches($@"batchrunner_admission_wait_seconds_count\{{queue=""{Queue}""\}} 2", metrics);
    }

    [Fact]
    public async Task A_batchjob_naming_a_queue_that_does_not_exist_waits_saying_so_and_runs_once_the_queue_appears()
    {
        _owned.Add(PodSimulator.Start(fixture.Admin, new PodSimulatorOptions { Namespace = TeamA }));
        _controller = ControllerProcess.Start(fixture.ControllerKubeconfig, "replica-a");

        await fixture.ApplyAsync(BatchJobYaml(TeamA, "early", $"queue: {Queue}"));
        await Eventually.TrueAsync(async () => Condition(await BatchJobAsync(fixture.Admin, TeamA, "early"), "Admitted")?.GetProperty("reason").GetString() == "QueueNotFound",
            Converge, "the BatchJob says its queue does not exist");
        var early = await BatchJobAsync(fixture.Admin, TeamA, "early");
        Assert.StartsWith($"0 of 2 indexes admitted in queue {Queue}", Condition(early, "Admitted")!.Value.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains($"spec.queue: no queue named {Queue}", Condition(early, "Admitted")!.Value.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(await JobsAsync(fixture.Admin, TeamA, "early"));
        Assert.Matches(@"early\s+Pending\s+", await fixture.KubectlAsync("get", "bj", "-n", TeamA));

        await fixture.ApplyAsync($"""
            apiVersion: batchrunner.io/v1alpha1
            kind: Queue
            metadata: {"{"}name: {Queue}{"}"}
            spec: {"{"}backends: [kubernetes]{"}"}
            """);
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, TeamA, "early")) == "Succeeded", Converge, "the BatchJob runs once its queue exists");
    }

    /// <summary>Runs the CLI in this process, its kubectl pointed at the test control plane (KUBECONFIG, as a user's would be).</summary>
    private async Task<string> CliAsync(params string[] args)
    {
        var stdout = await fixture.CliAsync(args);
        output.WriteLine(stdout);
        return stdout;
    }

    private static JsonElement? QueueField(JsonElement? batchJob, string field) =>
        Status(batchJob, "queue") is { } queue && queue.TryGetProperty(field, out var value) ? value : null;
}
