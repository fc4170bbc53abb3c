using System.Net.Http;
using Amazon.SQS.Model;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Controller.Hosting;
using BatchRunner.Controller.Intake;
using BatchRunner.Local.Intake;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;

namespace BatchRunner.Aws.Tests;

/// <summary>The hosted controller on one machine: no Kubernetes, the SQS intake, the local backend, /metrics.</summary>
public sealed class ControllerIntakeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("batchrunner-controller-").FullName;

    [Fact]
    public async Task The_controller_without_kubernetes_runs_a_queued_request_with_the_local_backend_and_counts_it()
    {
        var (queue, deadLetter) = await Fauxqs.Shared.CreateQueuePairAsync();
        await using var app = await StartControllerAsync(queue, deadLetter, []);

        using var client = Fauxqs.Shared.Client();
        await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml("from-the-queue",
            script: "echo {\\\"ok\\\": 1} > $BATCHRUNNER_OUTPUT_DIR/out.jsonl", extraSpec: "completions: 2")), default);
        await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml("elsewhere", ns: "team-a")), default);
        var submissions = app.Services.GetRequiredService<SubmissionStore>();
        await Eventually.WaitAsync(() => submissions.Find("default", "from-the-queue")?.IsFinished == true, "the queued job ran", 60);

        Assert.Equal(SubmissionState.Succeeded, submissions.Find("default", "from-the-queue")!.State);
        Assert.Equal(2, Directory.GetFiles(Path.Combine(Store, "batchjob=from-the-queue"), "out.jsonl", SearchOption.AllDirectories).Length);
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient();
        await Eventually.WaitAsync(async () => (await http.GetStringAsync(url + "/metrics")).Contains("batchrunner_intake_rejected_total{reason=\"tenant_refused\"} 1", StringComparison.Ordinal),
            "the refusal counted");
        var metrics = await http.GetStringAsync(url + "/metrics");
        Assert.Contains("batchrunner_intake_messages_total{outcome=\"created\"} 1", metrics, StringComparison.Ordinal);
        Assert.Equal("ok", await http.GetStringAsync(url + "/healthz"));
        await app.StopAsync();
    }

    [Fact]
    public async Task Two_tenants_sending_through_the_queue_share_the_local_quota_and_the_small_sweep_overtakes()
    {
        var (queue, deadLetter) = await Fauxqs.Shared.CreateQueuePairAsync();
        await using var app = await StartControllerAsync(queue, deadLetter, new()
        {
            ["BatchRunner:Sqs:Tenants:AllowedNamespaces:0"] = "team-a",
            ["BatchRunner:Sqs:Tenants:AllowedNamespaces:1"] = "team-b",
            ["BatchRunner:Queues:default:backends:0"] = "local",
            ["BatchRunner:Queues:default:quotas:local:indexes"] = "2",
        });

        using var client = Fauxqs.Shared.Client();
        await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml("large", ns: "team-a", script: "sleep 0.4", extraSpec: "completions: 10\n  parallelism: 2")), default);
        var submissions = app.Services.GetRequiredService<SubmissionStore>();
        await Eventually.WaitAsync(() => submissions.Find("team-a", "large")?.State == SubmissionState.Running, "the large sweep runs", 60);
        await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml("small", ns: "team-b", script: "sleep 0.4", extraSpec: "completions: 2\n  parallelism: 2")), default);

        await Eventually.WaitAsync(() => submissions.Find("team-a", "large")?.IsFinished == true && submissions.Find("team-b", "small")?.IsFinished == true, "both ran", 60);
        var (large, small) = (submissions.Find("team-a", "large")!, submissions.Find("team-b", "small")!);
        Assert.Equal((SubmissionState.Succeeded, SubmissionState.Succeeded), (large.State, small.State));
        Assert.True(small.FinishedAt < large.FinishedAt, $"small finished {small.FinishedAt:O}, large {large.FinishedAt:O}");
        // The quota held across both tenants: never more than two indexes at once, by the ledger's times.
        var attempts = Directory.GetFiles(Store, "ledger.json", SearchOption.AllDirectories)
            .Select(path => System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!)
            .Select(row => (Start: DateTimeOffset.Parse((string)row["started_at"]!, System.Globalization.CultureInfo.InvariantCulture),
                End: DateTimeOffset.Parse((string)row["finished_at"]!, System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
        Assert.Equal(12, attempts.Count);
        var mostAtOnce = attempts.Max(a => attempts.Count(b => b.Start <= a.Start && a.Start < b.End));
        Assert.InRange(mostAtOnce, 1, 2);
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync(url + "/metrics");
        Assert.Contains("batchrunner_admission_wait_seconds_count{queue=\"default\"} 2", metrics, StringComparison.Ordinal);
        Assert.Contains("batchrunner_queue_admitted_indexes{queue=\"default\",tenant=\"team-a\"}", metrics, StringComparison.Ordinal);
        await app.StopAsync();
    }

    private string Store => Path.Combine(_root, "store");

    /// <summary>The controller without Kubernetes, consuming <paramref name="queue"/> into the local store, with more settings.</summary>
    private async Task<WebApplication> StartControllerAsync(string queue, string deadLetter, Dictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["BatchRunner:Kubernetes:Enabled"] = "false",
            ["BatchRunner:LeaderElection:Enabled"] = "false",
            ["BatchRunner:Sqs:Enabled"] = "true",
            ["BatchRunner:Sqs:QueueUrl"] = queue,
            ["BatchRunner:Sqs:DeadLetterQueueUrl"] = deadLetter,
            ["BatchRunner:Sqs:EndpointUrl"] = Fauxqs.Shared.Url,
            ["BatchRunner:Sqs:WaitTimeSeconds"] = "1",
            ["BatchRunner:Sqs:Tenants:AllowedCommands:0"] = Specs.AllowedCommand,
            ["BatchRunner:Local:StoreRoot"] = Store,
            ["BatchRunner:Local:WorkingDirectory"] = _root,
        }).AddInMemoryCollection(settings);
        builder.AddBatchRunnerController();
        var app = builder.Build();
        app.MapControllerEndpoints();
        await app.StartAsync();
        return app;
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
