using System.Text.Json;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>
/// BatchJobs of an external backend (aws-batch) through the reconciler, with a scripted <see cref="IBatchBackend"/>:
/// what is handed to the backend, what comes back into the status and conditions, cancel and delete.
/// </summary>
public sealed class ExternalBackendReconcilerTests
{
    private const string Key = Specs.Namespace + "/" + Specs.Name;
    private const string AwsBatch = """{"backend": "aws-batch", "completions": 6, "parallelism": 6}""";

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeCluster _cluster = new();
    private readonly ScriptedBackend _backend = new();

    private BatchJobStatus Status => _cluster.StatusOf(Key);

    [Fact]
    public async Task Work_outside_the_cluster_is_held_by_a_finalizer_added_before_anything_is_submitted()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _backend.Next = run =>
        {
            // The backend submits with the finalizer already on the BatchJob.
            Assert.Contains("batchrunner.io/cleanup", _cluster.Find(Key)!.Metadata.Finalizers);
            return Progress(RunPhase.Running, succeeded: 0, active: 6, state: """{"nextIndex":6}""");
        };

        await ReconcileAsync();

        Assert.Equal("finalizers", _cluster.Writes[0]);
        Assert.Single(_backend.Advanced);
    }

    [Fact]
    public async Task The_finalizer_is_added_once_and_others_are_kept()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _cluster.Update(Key, b => b.Metadata.Finalizers = ["example.com/other"]);
        _backend.Next = run => Progress(RunPhase.Running, succeeded: 0, active: 6, state: """{"nextIndex":6}""");

        await ReconcileAsync();
        await ReconcileAsync();

        Assert.Equal(["example.com/other", "batchrunner.io/cleanup"], _cluster.Find(Key)!.Metadata.Finalizers);
        Assert.Single(_cluster.Writes, w => w == "finalizers");
    }

    [Fact]
    public async Task A_conflict_on_the_finalizer_patch_surfaces_as_an_exception_for_retry_and_nothing_is_submitted()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _cluster.ChangeOnServerOnly(Key);

        var conflict = await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() => ReconcileAsync());

        Assert.Equal(System.Net.HttpStatusCode.Conflict, conflict.Response.StatusCode);
        Assert.Empty(_cluster.Writes);
        Assert.Empty(_backend.Advanced);
    }

    [Fact]
    public async Task An_aws_batch_job_goes_to_its_backend_and_its_progress_becomes_the_status()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _backend.Next = run => Progress(RunPhase.Running, succeeded: 2, active: 3, state: """{"nextIndex":6,"arrays":[{"jobId":"j-1"}]}""");

        var result = await ReconcileAsync();

        var run = Assert.Single(_backend.Advanced);
        Assert.Equal((Specs.Namespace, Specs.Name, Specs.Uid, RunIdentity.For(Specs.Job(AwsBatch)), true), (run.Namespace, run.Name, run.Uid, run.RunId, run.AllowSubmit));
        Assert.Null(run.State);
        Assert.Equal((RunPhase.Running, 6, 2, 3), (Status.Phase, Status.Total, Status.Succeeded, Status.Active));
        Assert.Equal($"{Specs.Name}-{run.RunId}", Status.JobName);
        Assert.Equal("j-1", Status.BackendState!.Value.GetProperty("arrays")[0].GetProperty("jobId").GetString());
        Assert.Equal(TimeSpan.FromSeconds(7), result.RequeueAfter);
        var dispatched = Status.Find(Conditions.Dispatched)!;
        Assert.Equal(("True", "ArraysSubmitted", "6 indexes in 1 array"), (dispatched.Status, dispatched.Reason, dispatched.Message));
        Assert.Empty(_cluster.Jobs);
        Assert.Empty(_cluster.ConfigMaps);

        // The next reconcile hands the backend what it returned.
        _backend.Next = run => Progress(RunPhase.Succeeded, succeeded: 6, active: 0, state: """{"nextIndex":6,"arrays":[]}""");
        result = await ReconcileAsync();
        Assert.Equal(6, _backend.Advanced[1].State!.Value.GetProperty("nextIndex").GetInt32());
        Assert.Null(result.RequeueAfter);
        Assert.Equal(RunPhase.Succeeded, Status.Phase);
        Assert.Equal(("True", Conditions.Reasons.AllIndexesSucceeded), (Status.Find(Conditions.Complete)!.Status, Status.Find(Conditions.Complete)!.Reason));
        Assert.Contains(_cluster.Events, e => e.Reason == "Succeeded");

        // A finished run is not polled again.
        await ReconcileAsync();
        Assert.Equal(2, _backend.Advanced.Count);
    }

    [Fact]
    public async Task A_checkpoint_writes_the_backends_state_into_the_status_at_once()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _backend.Checkpoints = ["""{"nextIndex":3}"""];
        _backend.Next = run => throw new HttpRequestException("AWS went away after the submission");

        await Assert.ThrowsAsync<HttpRequestException>(() => ReconcileAsync());

        Assert.Equal(3, Status.BackendState!.Value.GetProperty("nextIndex").GetInt32());
        Assert.Equal(RunIdentity.For(Specs.Job(AwsBatch)), Status.RunId);
        Assert.Contains("status", _cluster.Writes);
    }

    [Fact]
    public async Task A_blocked_dispatch_is_a_false_condition_with_the_backends_words_and_one_warning()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _backend.Next = run => Progress(RunPhase.Pending, 0, 0, "{}") with
        {
            Dispatched = false, Reason = "AwsBatchRejected", Message = "AWS Batch: AccessDeniedException: not authorized to perform: batch:SubmitJob",
            PollAfter = TimeSpan.FromMinutes(5),
        };

        var result = await ReconcileAsync();
        await ReconcileAsync();

        var dispatched = Status.Find(Conditions.Dispatched)!;
        Assert.Equal(("False", "AwsBatchRejected"), (dispatched.Status, dispatched.Reason));
        Assert.Contains("AccessDeniedException", dispatched.Message, StringComparison.Ordinal);
        Assert.Single(_cluster.Events, e => e is ("Warning", "AwsBatchRejected", _));
        Assert.Equal(TimeSpan.FromMinutes(5), result.RequeueAfter);
        Assert.Equal(RunPhase.Pending, Status.Phase);
        Assert.Null(Status.JobName);
    }

    [Fact]
    public async Task A_failed_run_names_its_failed_indexes_in_the_failed_condition()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _backend.Next = run => Progress(RunPhase.Failed, succeeded: 4, active: 0, "{}") with
        {
            Failed = 2, FailedIndexes = "1,4", FailureReason = "IndexesFailed", FailureMessage = "2 of 6 indexes failed: index 1: Essential container in task exited (exit code 3)",
        };

        await ReconcileAsync();

        Assert.Equal((RunPhase.Failed, 2, "1,4"), (Status.Phase, Status.Failed, Status.FailedIndexes));
        var failed = Status.Find(Conditions.Failed)!;
        Assert.Equal(("True", "IndexesFailed"), (failed.Status, failed.Reason));
        Assert.Equal("2 of 6 indexes failed: index 1: Essential container in task exited (exit code 3); failed indexes: 1,4", failed.Message);
    }

    [Fact]
    public async Task The_cancel_annotation_cancels_through_the_backend_once()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _backend.Next = run => Progress(RunPhase.Running, 1, 5, """{"arrays":[{"jobId":"j-1"}]}""");
        await ReconcileAsync();

        _cluster.Update(Key, b => b.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.CancelAnnotation] = "true" });
        await ReconcileAsync();
        await ReconcileAsync();

        var cancelled = Assert.Single(_backend.Cancelled);
        Assert.Equal("j-1", cancelled.Run.State!.Value.GetProperty("arrays")[0].GetProperty("jobId").GetString());
        Assert.Contains(BatchJobResource.CancelAnnotation, cancelled.Reason, StringComparison.Ordinal);
        Assert.Equal((RunPhase.Cancelled, 0), (Status.Phase, Status.Active));
        Assert.Equal(Conditions.Reasons.Cancelled, Status.Find(Conditions.Failed)!.Reason);
        Assert.Single(_backend.Advanced);
    }

    [Fact]
    public async Task Deleting_a_running_batchjob_cancels_its_backend_work_then_releases_it()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _backend.Next = run => Progress(RunPhase.Running, 1, 5, """{"arrays":[{"jobId":"j-1"}]}""");
        await ReconcileAsync();

        _cluster.Delete(Key);
        await ReconcileAsync();

        var cancelled = Assert.Single(_backend.Cancelled);
        Assert.Contains("was deleted", cancelled.Reason, StringComparison.Ordinal);
        Assert.Equal(RunIdentity.For(Specs.Job(AwsBatch)), cancelled.Run.RunId);
        Assert.Null(_cluster.Find(Key));
    }

    [Fact]
    public async Task A_backend_that_cannot_stop_its_work_does_not_hold_the_deletion_and_says_so()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _backend.Next = run => Progress(RunPhase.Running, 1, 5, """{"arrays":[{"jobId":"j-1"}]}""");
        await ReconcileAsync();
        _backend.CancelResult = Progress(RunPhase.Cancelled, 1, 0, "{}") with { Dispatched = false, Reason = "AwsBatchRejected", Message = "AccessDeniedException: batch:TerminateJob" };

        _cluster.Delete(Key);
        await ReconcileAsync();

        Assert.Null(_cluster.Find(Key));
        Assert.Contains(_cluster.Events, e => e.Type == "Warning" && e.Message.Contains("batch:TerminateJob", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_results_defining_change_after_dispatch_stops_new_submissions_visibly()
    {
        _cluster.Apply(Specs.Object(AwsBatch));
        _backend.Next = run => Progress(RunPhase.Running, 1, 5, "{}");
        await ReconcileAsync();

        _cluster.Update(Key, b =>
        {
            b.Spec = JsonSerializer.SerializeToElement(Specs.Spec("""{"backend": "aws-batch", "completions": 6, "parallelism": 6, "image": "registry.example/sim:2"}"""));
            b.Metadata.Generation = 2;
        });
        await ReconcileAsync();

        Assert.False(_backend.Advanced[1].AllowSubmit);
        Assert.Equal(_backend.Advanced[0].RunId, _backend.Advanced[1].RunId);
        Assert.Equal(("False", Conditions.Reasons.ImmutableFieldChanged), (Status.Find(Conditions.SpecApplied)!.Status, Status.Find(Conditions.SpecApplied)!.Reason));
    }

    [Fact]
    public async Task Without_the_backend_in_this_controller_an_aws_batch_job_is_refused_naming_spec_backend_and_the_backends_here()
    {
        _cluster.Apply(Specs.Object(AwsBatch));

        await new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance).ReconcileAsync(Key, CancellationToken.None);

        var valid = Status.Find(Conditions.Valid)!;
        Assert.Equal(("False", Conditions.Reasons.BackendUnavailable), (valid.Status, valid.Reason));
        Assert.Equal("spec.backend: aws-batch is not a backend of this controller (backends here: kubernetes)", valid.Message);
        Assert.Null(Status.Find(Conditions.Dispatched));
        Assert.Contains(_cluster.Events, e => e.Reason == Conditions.Reasons.BackendUnavailable && e.Message == valid.Message);
        Assert.Empty(_backend.Advanced);
    }

    private async Task<ReconcileResult> ReconcileAsync()
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance, [_backend]);
        return await reconciler.ReconcileAsync(Key, CancellationToken.None);
    }

    internal static BackendProgress Progress(RunPhase phase, int succeeded, int active, string state) => new(
        phase, 6, succeeded, 0, active, null, new DateTimeOffset(2026, 3, 1, 12, 0, 5, TimeSpan.Zero),
        phase is RunPhase.Succeeded or RunPhase.Failed ? new DateTimeOffset(2026, 3, 1, 12, 9, 0, TimeSpan.Zero) : null,
        Dispatched: true, "ArraysSubmitted", "6 indexes in 1 array", null, null, JsonDocument.Parse(state).RootElement.Clone(), TimeSpan.FromSeconds(7));

    internal sealed class ScriptedBackend : IBatchBackend
    {
        public Func<BackendRun, BackendProgress> Next { get; set; } = _ => throw new InvalidOperationException("no answer scripted");

        public List<string> Checkpoints { get; set; } = [];

        public BackendProgress? CancelResult { get; set; }

        public List<BackendRun> Advanced { get; } = [];

        public List<(BackendRun Run, string Reason)> Cancelled { get; } = [];

        public Backend Backend => Backend.AwsBatch;

        public async Task<BackendProgress> AdvanceAsync(BackendRun run, BackendCheckpoint checkpoint, CancellationToken cancellation)
        {
            Advanced.Add(run);
            foreach (var state in Checkpoints)
            {
                await checkpoint(JsonDocument.Parse(state).RootElement.Clone(), cancellation);
            }

            return Next(run);
        }

        public Task<BackendProgress> CancelAsync(BackendRun run, string reason, CancellationToken cancellation)
        {
            Cancelled.Add((run, reason));
            return Task.FromResult(CancelResult ?? Progress(RunPhase.Cancelled, 1, 0, run.State?.GetRawText() ?? "{}"));
        }

        /// <summary>As AWS Batch: a run not finished is cancelled; what cannot be stopped is reported, not waited for.</summary>
        public async Task<BackendRelease> ReleaseAsync(BackendRun run, string reason, CancellationToken cancellation)
        {
            if (run.WasFinished)
            {
                return BackendRelease.Done;
            }

            var stopped = await CancelAsync(run, reason, cancellation);
            return new BackendRelease(true, stopped.Dispatched ? null : new BackendCondition(false, stopped.Reason, stopped.Message));
        }

        public BackendCapacity Capacity => BackendCapacity.Unknown;

        /// <summary>Which failures pass by themselves (none, unless a test says so).</summary>
        public Func<Exception, bool> Transient { get; set; } = _ => false;

        public bool IsTransient(Exception error) => Transient(error);
    }
}
