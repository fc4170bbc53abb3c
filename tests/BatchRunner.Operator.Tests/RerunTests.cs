using BatchRunner.Core.Runs;
using BatchRunner.Kubernetes.Testing;
using BatchRunner.Local.Query;
using Xunit;
using Xunit.Abstractions;
using static BatchRunner.Operator.Tests.Cluster;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// Reruns on a real control plane through kubectl's door (the annotation, as <c>batchrunner rerun --cluster</c> writes
/// it): only the chosen indexes run again, in a Job of their own, the status and the compacted table show their new
/// attempts, and a request that chooses nothing is refused with why.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class RerunTests(OperatorFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(60);
    private readonly string _ns = "rr-" + Guid.NewGuid().ToString("N")[..10];
    private readonly string _store = Directory.CreateTempSubdirectory("operator-rerun-").FullName;
    private PodSimulator? _pods;
    private ControllerProcess? _controller;

    public async Task InitializeAsync() => await fixture.ControlPlane.CreateNamespaceAsync(_ns);

    public async Task DisposeAsync()
    {
        if (_controller is not null)
        {
            output.WriteLine($"--- controller log ---\n{_controller.Log}");
            await _controller.DisposeAsync();
        }

        if (_pods is not null)
        {
            await _pods.DisposeAsync();
        }

        Directory.Delete(_store, recursive: true);
    }

    [Fact]
    public async Task Rerunning_chosen_indexes_runs_exactly_those_in_a_job_of_their_own_and_the_compacted_table_shows_their_new_attempts()
    {
        // Each simulated pod leaves what the results wrapper would: a ledger row and a result line. Kubernetes 1.20 gives
        // pods no completion index, so the simulator numbers them per Job; a rerun's pods run the indexes its list names.
        var positions = new System.Collections.Concurrent.ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        _pods = PodSimulator.Start(fixture.Admin, new PodSimulatorOptions
        {
            Namespace = _ns,
            Outcome = pod =>
            {
                var labels = pod.Metadata.Labels;
                var job = labels["job-name"];
                var position = positions.AddOrUpdate(job, 0, (_, p) => p + 1);
                var listed = pod.Spec.Containers[0].Env.FirstOrDefault(e => e.Name == WorkloadEnvironment.RerunIndexes)?.Value;
                var (index, attempt, pass) = listed is null ? (position, 1, "first") : (IndexRanges.Parse(listed)[position], 2, "second");
                WriteAttempt(labels["batchrunner.io/run"], index, attempt, pass);
                return PodOutcome.Succeed;
            },
        });
        _controller = ControllerProcess.Start(fixture.ControllerKubeconfig, "replica-a", "--BatchRunner:Results:Uri=" + _store);

        await fixture.ApplyAsync(BatchJobYaml(_ns, "sweep", sweep: "{grid: {n: [1, 2, 3, 4]}}"));
        await Eventually.TrueAsync(async () => Compacted(await BatchJobAsync(fixture.Admin, _ns, "sweep")), Converge, "the sweep succeeds and is compacted");

        Assert.Contains("Asked for a rerun of", await fixture.CliAsync("rerun", "sweep", "-n", _ns, "--index", "1-2", "--cluster"), StringComparison.Ordinal);

        await Eventually.TrueAsync(async () => Status(await BatchJobAsync(fixture.Admin, _ns, "sweep"), "rerun")?.GetProperty("number").GetInt32() == 1
            && Compacted(await BatchJobAsync(fixture.Admin, _ns, "sweep")), Converge, "the rerun is taken, succeeds and the run is compacted again");
        var batchJob = await BatchJobAsync(fixture.Admin, _ns, "sweep");
        Assert.Equal(("Succeeded", 4, 0), (Phase(batchJob), Status(batchJob, "succeeded")!.Value.GetInt32(), Status(batchJob, "failed")!.Value.GetInt32()));
        Assert.Equal("1-2", Status(batchJob, "rerun")!.Value.GetProperty("indexes").GetString());
        Assert.Equal(("True", "RerunTaken"), (Condition(batchJob, "Rerun")?.GetProperty("status").GetString(), Condition(batchJob, "Rerun")?.GetProperty("reason").GetString()));
        Assert.StartsWith("rerun 1: 2 of 4 indexes get new attempts (1-2)", Condition(batchJob, "Rerun")?.GetProperty("message").GetString(), StringComparison.Ordinal);
        var runId = Status(batchJob, "runId")!.Value.GetString()!;
        Assert.StartsWith($"run {runId}: 6 attempt(s) and 4 result row(s) compacted", Condition(batchJob, "ResultsCompacted")?.GetProperty("message").GetString(), StringComparison.Ordinal);

        var jobs = await JobsAsync(fixture.Admin, _ns, "sweep");
        Assert.Equal(["sweep", "sweep-rerun-1"], jobs.Select(j => j.Metadata.Name).Order());
        var rerunJob = jobs.Single(j => j.Metadata.Name == "sweep-rerun-1");
        Assert.Equal((2, "1"), (rerunJob.Spec.Completions, rerunJob.Metadata.Labels["batchrunner.io/rerun"]));
        Assert.Equal("1-2", rerunJob.Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == WorkloadEnvironment.RerunIndexes).Value);

        using (var table = ResultsQueryEngine.Open(_store))
        {
            Assert.Single(table.CompactedRuns);
            Assert.Equal(
                [[0L, "first"], [1L, "second"], [2L, "second"], [3L, "first"]],
                table.Execute("SELECT \"index\", pass FROM results ORDER BY 1").Rows.Select(r => r.ToArray()));
        }

        // Nothing failed: a rerun of the failed indexes is refused, saying so, and nothing runs.
        await fixture.KubectlAsync("annotate", "bj", "sweep", "-n", _ns, "batchrunner.io/rerun=failed", "--overwrite");
        await Eventually.TrueAsync(async () => Condition(await BatchJobAsync(fixture.Admin, _ns, "sweep"), "Rerun")?.GetProperty("reason").GetString() == "RerunRefused",
            Converge, "the second request is refused");
        batchJob = await BatchJobAsync(fixture.Admin, _ns, "sweep");
        Assert.Equal("rerun \"failed\" refused: the run has no failed indexes", Condition(batchJob, "Rerun")?.GetProperty("message").GetString());
        Assert.Equal(("Succeeded", 1), (Phase(batchJob), Status(batchJob, "rerun")!.Value.GetProperty("number").GetInt32()));
        Assert.Equal(2, (await JobsAsync(fixture.Admin, _ns, "sweep")).Count);
        await Eventually.TrueAsync(async () => (await EventsAsync(fixture.Admin, _ns, "sweep")).Any(e => e.Reason == "RerunRefused" && e.Type == "Warning"), Converge, "a Warning event RerunRefused");

        // A condition over the run's ledger, read in its store: the CLI turns it into the indexes it chose.
        Assert.Contains("(3@", await fixture.CliAsync("rerun", "sweep", "-n", _ns, "--cluster", "--where", "n = 4", "--results", _store), StringComparison.Ordinal);
        await Eventually.TrueAsync(async () => Status(await BatchJobAsync(fixture.Admin, _ns, "sweep"), "rerun")?.GetProperty("number").GetInt32() == 2
            && Phase(await BatchJobAsync(fixture.Admin, _ns, "sweep")) == "Succeeded", Converge, "the second rerun is taken and succeeds");
        Assert.Equal("3", Status(await BatchJobAsync(fixture.Admin, _ns, "sweep"), "rerun")!.Value.GetProperty("indexes").GetString());
        Assert.Contains("sweep-rerun-2", (await JobsAsync(fixture.Admin, _ns, "sweep")).Select(j => j.Metadata.Name));
    }

    private static bool Compacted(System.Text.Json.JsonElement? batchJob) =>
        Phase(batchJob) == "Succeeded" && Condition(batchJob, "ResultsCompacted")?.GetProperty("status").GetString() == "True";

    private void WriteAttempt(string run, int index, int attempt, string pass)
    {
        var folder = Path.Combine(_store, "batchjob=sweep", $"run={run}", $"index={index}", $"attempt={attempt}");
        Directory.CreateDirectory(Path.Combine(folder, "output"));
        File.WriteAllText(Path.Combine(folder, "output", "rows.jsonl"), $"{{\"pass\": \"{pass}\"}}\n");
        File.WriteAllText(Path.Combine(folder, "ledger.json"), $$"""
            {"batchjob": "sweep", "namespace": "{{_ns}}", "run": "{{run}}", "index": {{index}}, "attempt": {{attempt}}, "repeat": 0, "seed": {{index}},
             "params": {"n": {{index + 1}}}, "status": "succeeded", "exit_code": 0, "started_at": "2026-11-22T10:00:00.000000Z",
             "finished_at": "2026-11-22T10:00:01.000000Z", "duration_seconds": 1.0, "backend": "kubernetes", "output_files": 1, "output_bytes": 18,
             "output_rows": 1, "output_malformed": 0}
            """);
    }
}
