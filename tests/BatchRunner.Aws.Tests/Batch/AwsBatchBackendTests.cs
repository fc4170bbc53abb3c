using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Aws.Batch;
using BatchRunner.Backends;
using BatchRunner.Controller.Intake;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Controller;
using YamlDotNet.Serialization;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>The operator's door to AWS Batch: pacing of polls, the status it produces, the CRD that must keep it.</summary>
public sealed class AwsBatchBackendTests
{
    [Fact]
    public async Task Reconciles_woken_by_its_own_status_patches_do_not_poll_aws_before_due()
    {
        await using var rig = await BatchRig.StartAsync();
        var backend = new AwsBatchBackend(rig.Dispatcher(), rig.Time);
        var job = BatchRig.Job(extra: "  completions: 4\n  parallelism: 4");
        var run = new BackendRun(job, "team-a", "sweep", "uid-1", 1, RunIdentity.For(job), IndexSelection.All, null, true);
        var checkpoints = new List<JsonElement>();

        var first = await backend.AdvanceAsync(run, (state, _) => { checkpoints.Add(state); return Task.CompletedTask; }, default);
        var calls = rig.Server.Calls.Count;
        var early = await backend.AdvanceAsync(run with { State = first.State }, (_, _) => Task.CompletedTask, default);

        Assert.Equal(calls, rig.Server.Calls.Count);
        Assert.Equal(first with { PollAfter = early.PollAfter }, early);
        Assert.Single(checkpoints);
        Assert.Equal("ArraysSubmitted", first.Reason);
        Assert.True(first.Dispatched);

        // A new generation, or the due time, is worth a look.
        await backend.AdvanceAsync(run with { State = first.State, Generation = 2 }, (_, _) => Task.CompletedTask, default);
        Assert.True(rig.Server.Calls.Count > calls);
        calls = rig.Server.Calls.Count;
        rig.Time.Advance(first.PollAfter);
        await backend.AdvanceAsync(run with { State = first.State, Generation = 2 }, (_, _) => Task.CompletedTask, default);
        Assert.True(rig.Server.Calls.Count > calls);
    }

    [Fact]
    public async Task A_failed_run_reports_indexes_failed_and_an_impossible_size_its_own_reason()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.ExitCode = (index, _) => index == 1 ? 9 : 0;
        var backend = new AwsBatchBackend(rig.Dispatcher(), rig.Time);
        var job = BatchRig.Job(extra: "  completions: 3\n  parallelism: 3");
        BackendProgress progress;
        var state = (JsonElement?)null;
        do
        {
            rig.Time.Advance(TimeSpan.FromMinutes(2));
            progress = await backend.AdvanceAsync(new BackendRun(job, "team-a", "sweep", "uid-1", 1, RunIdentity.For(job), IndexSelection.All, state, true), (_, _) => Task.CompletedTask, default);
            state = progress.State;
        }
        while (!progress.IsTerminal);

        var huge = BatchRig.Job(extra: "  resources: {cpu: \"64\"}");
        var refused = await backend.AdvanceAsync(new BackendRun(huge, "team-a", "huge", "uid-2", 1, RunIdentity.For(huge), IndexSelection.All, null, true), (_, _) => Task.CompletedTask, default);

        Assert.Equal((RunPhase.Failed, "IndexesFailed", "1"), (progress.Phase, progress.FailureReason, progress.FailedIndexes));
        Assert.Contains("exit code 9", progress.FailureMessage, StringComparison.Ordinal);
        Assert.Equal((RunPhase.Failed, false, AwsBatchReasons.InvalidResources), (refused.Phase, refused.Dispatched, refused.FailureReason));
    }

    [Fact]
    public void The_crd_keeps_every_field_of_the_run_state()
    {
        var state = new AwsBatchRunState
        {
            RunId = "r1", JobQueue = "q", JobDefinition = "arn", SpecLocation = "s3://b/k", WindowSize = 2, NextIndex = 4,
            Reruns = 1, RerunIndexes = "1,3", RerunNext = 2,
            Arrays = [new ArrayRecord { JobId = "j", JobName = "n", Start = 2, Size = 2, Indexes = "1,3", SubmittedAt = DateTimeOffset.UnixEpoch, Status = "RUNNING", Succeeded = 1, Failed = 0, Running = 1 }],
            DoneSucceeded = 1, DoneFailed = 1, FailedIndexes = "1", Failures = [new IndexFailure(1, "boom", 3)],
            StartTime = DateTimeOffset.UnixEpoch, CompletionTime = DateTimeOffset.UnixEpoch, Outcome = "Cancelled",
        };
        var crdPath = Path.Combine(Protocol.Botocore.RepoRoot(), "manifests", "crds", "batchjobs.batchrunner.io.yaml");
        var yaml = new DeserializerBuilder().Build().Deserialize<object>(File.ReadAllText(crdPath));
        var crd = JsonNode.Parse(new SerializerBuilder().JsonCompatible().Build().Serialize(yaml))!;
        var status = crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!["properties"]!["status"]!["properties"]!;

        // Unknown fields of a structural schema are pruned by the API server: the backend-neutral slot keeps whatever a
        // backend writes there, and the slot of controllers before it still describes AWS Batch's state whole (it is read once).
        Assert.Equal("true", status["backendState"]!["x-kubernetes-preserve-unknown-fields"]!.ToString());
        var missing = new List<string>();
        Walk(JsonNode.Parse(JsonSerializer.Serialize(state, AwsBatchRunState.TypeInfo))!, status["awsBatch"]!, "status.awsBatch", missing);
        Assert.True(missing.Count == 0, "not in the CRD: " + string.Join(", ", missing));
    }

    private static void Walk(JsonNode value, JsonNode schema, string path, List<string> missing)
    {
        switch (value)
        {
            case JsonObject obj:
                foreach (var (name, child) in obj)
                {
                    if (schema["properties"]?[name] is not { } property)
                    {
                        missing.Add($"{path}.{name}");
                    }
                    else if (child is not null)
                    {
                        Walk(child, property, $"{path}.{name}", missing);
                    }
                }

                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    Walk(item!, schema["items"]!, path + "[]", missing);
                }

                break;
        }
    }
}
