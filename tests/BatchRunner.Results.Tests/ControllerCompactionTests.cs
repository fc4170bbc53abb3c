using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using BatchRunner.Controller.Compaction;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Kubernetes.Compaction;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using BatchRunner.Kubernetes.Tests;
using BatchRunner.Local.Query;
using BatchRunner.Results.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using k8s.Models;

namespace BatchRunner.Results.Tests;

/// <summary>
/// A BatchJob finished on Kubernetes, its indexes uploaded by the results wrapper to S3 (fauxqs): the reconciler
/// hands the run to the compaction worker, the controller's compactor writes Parquet and the manifest in S3, the
/// condition says so, and queries answer as they did over the raw files.
/// </summary>
public sealed class ControllerCompactionTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_finished_batchjobs_run_is_compacted_in_s3_by_the_controller_and_answers_as_its_raw_files_did()
    {
        var (s3, uri) = await S3Server.Shared.NewStoreAsync();
        var overrides = new JsonObject
        {
            ["command"] = new JsonArray("/bin/sh", "-c", CompactionTests.Script),
            ["env"] = new JsonArray(new JsonObject { ["name"] = "SCRATCH", ["value"] = _temp.Path }),
            ["sweep"] = JsonNode.Parse("""{"grid": {"a": [1, 2], "b": ["x", "y"]}, "repeats": 2}"""),
            ["retry"] = JsonNode.Parse("""{"attempts": 2, "backoffSeconds": 0}"""),
        }.ToJsonString();
        var job = Specs.Job(overrides);
        var runId = RunIdentity.For(job);
        var key = $"{Specs.Namespace}/{Specs.Name}";
        var cluster = new FakeCluster();
        cluster.Apply(Specs.Object(overrides));
        var settled = new BlockingCollection<string>();
        var worker = new CompactionWorker(new StoreRunCompactor(S3Server.Shared.Options(uri), TimeProvider.System, NullLogger<ResultsCompactor>.Instance), CompactionSettings.Default, TimeProvider.System, NullLogger<CompactionWorker>.Instance);
        using var stop = new CancellationTokenSource();
        var working = worker.RunAsync(settled.Add, stop.Token);
        var reconciler = new BatchJobReconciler(
            cluster, new DispatchSettings(3600, new ResultsCollection(uri, "batchrunner/controller:test")), TimeProvider.System, NullLoggerFactory.Instance, compaction: worker);

        // Dispatched; then each pod's wrapper uploads its index (index 3 fails once and is retried, as the Job would).
        await reconciler.ReconcileAsync(key, CancellationToken.None);
        Assert.NotNull(cluster.Job(Specs.Name));
        var spec = Path.Combine(_temp.Path, "spec.json");
        await File.WriteAllTextAsync(spec, RunIdentity.SpecJson(job));
        for (var index = 0; index < 8; index++)
        {
            var environment = S3Server.Shared.Environment();
            environment["JOB_COMPLETION_INDEX"] = $"{index}";
            environment["SCRATCH"] = _temp.Path;
            if ((await Wrapper.RunAsync(Wrapper.Arguments(spec, uri, job), environment)).ExitCode != 0)
            {
                Assert.Equal(0, (await Wrapper.RunAsync(Wrapper.Arguments(spec, uri, job), environment)).ExitCode);
            }
        }

        var before = _temp.Sub("before");
        await StoreSnapshot.DownloadAsync(s3, before, CancellationToken.None);
        List<List<string>> raw;
        using (var engine = ResultsQueryEngine.Open(before))
        {
            Assert.Empty(engine.CompactedRuns);
            raw = CompactionTests.Queries.Select(q => LocalRuns.Answer(engine, q)).ToList();
        }

        // The Job completes: the reconciler asks for compaction; once it settled, the condition says it is done.
        cluster.SetJobStatus(Specs.Name, new V1JobStatus
        {
            Succeeded = 8,
            Conditions = [new V1JobCondition { Type = "Complete", Status = "True", LastTransitionTime = DateTime.UtcNow }],
        });
        await reconciler.ReconcileAsync(key, CancellationToken.None);
        Assert.Equal(RunPhase.Succeeded, cluster.StatusOf(key).Phase);
        Assert.True(settled.TryTake(out var woken, TimeSpan.FromSeconds(60)), "the compaction did not settle");
        Assert.Equal(key, woken);
        await reconciler.ReconcileAsync(key, CancellationToken.None);
        var condition = cluster.StatusOf(key).Find(Conditions.ResultsCompacted)!;
        Assert.Equal(("True", Conditions.Reasons.Compacted), (condition.Status, condition.Reason));
        Assert.StartsWith($"run {runId}: 9 attempt(s) and 14 result row(s) compacted into 2 Parquet file(s) in {uri}", condition.Message, StringComparison.Ordinal);

        // In S3: the Parquet files and the manifest's compaction; queries read only those now, with the same answers.
        var keys = new List<string>();
        await foreach (var item in s3.ListAsync(StoreLayout.RunPrefix(Specs.Name, runId) + "/", CancellationToken.None))
        {
            keys.Add(item.Key);
        }

        Assert.Contains(StoreLayout.CompactedKey(Specs.Name, runId, "results", 0), keys);
        Assert.Contains(StoreLayout.CompactedKey(Specs.Name, runId, "indexes", 0), keys);
        var manifest = JsonNode.Parse((await s3.GetBytesAsync(StoreLayout.RunManifestKey(Specs.Name, runId), CancellationToken.None))!)!;
        Assert.Equal((14L, 9L), ((long)manifest["compaction"]!["results"]!["rows"]!, (long)manifest["compaction"]!["indexes"]!["rows"]!));
        var after = _temp.Sub("after");
        await StoreSnapshot.DownloadAsync(s3, after, CancellationToken.None);
        using (var engine = ResultsQueryEngine.Open(after))
        {
            Assert.Equal([runId], engine.CompactedRuns);
            Assert.Equal(raw, CompactionTests.Queries.Select(q => LocalRuns.Answer(engine, q)).ToList());
        }

        // A controller that restarts (an empty worker) finds the run compacted in the store and compacts nothing again.
        var again = await new StoreRunCompactor(S3Server.Shared.Options(uri), TimeProvider.System, NullLogger<ResultsCompactor>.Instance)
            .CompactAsync(new CompactionTarget(uri, Specs.Name, runId), CancellationToken.None);
        Assert.Equal(CompactionResult.AlreadyCompacted, again.Result);

        await stop.CancelAsync();
        await working;
    }
}
