using System.Text.Json.Nodes;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Cli;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Tests;

/// <summary><c>batchrunner queue list|show</c> and <c>status</c> over what the local controller decided, and over a cluster's objects.</summary>
public sealed class QueueCommandTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
    private readonly string _store = Directory.CreateTempSubdirectory("batchrunner-queues-").FullName;

    public void Dispose() => Directory.Delete(_store, recursive: true);

    private static async Task<(int Code, string Out, string Err)> CliAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApplication.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private void WriteDecisions()
    {
        var queue = new QueueDefinition("default", [Backend.Local], new Dictionary<Backend, Quota> { [Backend.Local] = new(2, long.MaxValue, long.MaxValue) },
            new Dictionary<string, double> { ["team-a"] = 2 }, 1, TimeSpan.FromHours(1));
        var result = QueueCycle.Run([queue],
        [
            new QueuedWorkload(new Workload("team-a/large", "team-a", "default", Backend.Local, 0, 1, 4, 100, 2, 0, 0), new RuntimeSummary(10, 60, 90)),
            new QueuedWorkload(new Workload("team-b/small", "team-b", "default", Backend.Local, 0, 2, 2, 2, 0, 0, 0), null),
        ], [], Now);
        QueueSnapshot.Write(_store, QueueSnapshot.ToJson(result, new Dictionary<string, string> { ["broken"] = "BatchRunner:Queues:broken.backends: required" }, Now));
    }

    [Fact]
    public async Task Queue_list_shows_each_queue_with_its_numbers_and_a_refused_one_with_why()
    {
        WriteDecisions();

        var (code, output, _) = await CliAsync("queue", "list", "--store", _store);

        Assert.Equal(0, code);
        Assert.Matches(@"QUEUE\s+BACKENDS\s+PENDING\s+ADMITTED\s+WAITING\s+USAGE\s+VALID", output);
        // Fair is one each (weights 2:1 over two indexes); team-a runs two, so team-b waits for one to finish.
        Assert.Matches(@"default\s+local\s+5\s+1\s+2\s+team-a 100%, team-b 0%\s+True", output);
        Assert.Contains("broken", output, StringComparison.Ordinal);
        Assert.Contains("False: BatchRunner:Queues:broken.backends: required", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Queue_show_lists_tenants_and_batchjobs_in_line_with_why_they_wait()
    {
        WriteDecisions();

        var (code, output, _) = await CliAsync("queue", "show", "default", "--store", _store);

        Assert.Equal(0, code);
        Assert.StartsWith("Queue default on local: 1 indexes admitted, 5 pending, 2 BatchJob(s) waiting", output, StringComparison.Ordinal);
        Assert.Matches(@"team-a\s+2\s+1\s+", output);
        Assert.Matches(@"team-b/small\s+0\s+2\s+1\s+QuotaExhausted", output);
        Assert.Matches(@"team-a/large\s+1\s+4\s+2\s+TenantOverShare", output);
        Assert.Contains("team-b/small: 0 of 2 indexes admitted in queue default, position 1: queue default on local has no room", output, StringComparison.Ordinal);
        var (missing, _, error) = await CliAsync("queue", "show", "nowhere", "--store", _store);
        Assert.Equal((1, "batchrunner: no queue named nowhere"), (missing, error.Trim()));
    }

    [Fact]
    public async Task Status_of_a_batchjob_waiting_in_the_local_controller_s_queue_says_why_and_when()
    {
        WriteDecisions();

        var (code, output, _) = await CliAsync("status", "small", "--store", _store);

        Assert.Equal(0, code);
        Assert.StartsWith("team-b/small in queue default: 0 of 2 indexes admitted in queue default, position 1:", output, StringComparison.Ordinal);
        Assert.Contains("starts in ~", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_any_decision_the_list_says_the_default_queue_takes_everything()
    {
        var (code, output, _) = await CliAsync("queue", "list", "--store", _store);

        Assert.Equal((0, "No queues yet (without any, every BatchJob runs in the default queue at its parallelism)"), (code, output.Trim()));
    }

    [Fact]
    public void A_cluster_s_queues_and_batchjobs_read_as_the_local_decisions_do()
    {
        var queues = JsonNode.Parse("""
            {"items": [{"metadata": {"name": "research"}, "spec": {"backends": ["kubernetes"]},
              "status": {"backends": "kubernetes", "pendingIndexes": 3, "admittedIndexes": 2, "waitingBatchJobs": 1, "usage": "team-a 100%",
                         "tenants": [{"name": "team-a", "weight": 1}], "conditions": [{"type": "Valid", "status": "True"}]}}]}
            """)!.AsObject();
        var batchJobs = JsonNode.Parse("""
            {"items": [
              {"metadata": {"name": "small", "namespace": "team-b"}, "status": {"phase": "Pending",
                "queue": {"name": "research", "allowance": 0, "wanted": 3, "position": 1, "reason": "QuotaExhausted", "eta": "starts in ~1m (P90 2m), done in ~4m (P90 6m)"},
                "conditions": [{"type": "Admitted", "status": "False", "message": "0 of 3 indexes admitted"}]}},
              {"metadata": {"name": "old", "namespace": "team-b"}, "status": {"phase": "Succeeded", "queue": {"name": "research"}}}]}
            """)!.AsObject();

        var state = BatchRunner.Cli.Commands.QueueCommand.FromCluster(queues, batchJobs);

        var queue = Assert.Single(state["queues"]!.AsArray())!;
        Assert.Equal(("research", "kubernetes", true), ((string)queue["name"]!, (string)queue["backends"]!, (bool)queue["valid"]!));
        var small = Assert.Single(state["batchJobs"]!.AsArray())!;
        Assert.Equal(("team-b/small", 1, "0 of 3 indexes admitted"), ((string)small["key"]!, (int)small["position"]!, (string)small["message"]!));
    }
}
