using BatchRunner.Backends;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using static BatchRunner.Kubernetes.Tests.ExternalBackendReconcilerTests;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>
/// A run its queue splits across backends: the split recorded before anything goes, each backend handed its part
/// only, the status summed from the parts, and cancel, delete and a missing or refusing overflow backend.
/// </summary>
public sealed class OverflowReconcilerTests
{
    private const string Key = Specs.Namespace + "/" + Specs.Name;
    private const string Sweep = """{"completions": 8, "parallelism": 4, "queue": "burst"}""";
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly string Part = OverflowPlan.KeyOf(Key, Backend.AwsBatch);

    private readonly FakeTimeProvider _time = new(Now);
    private readonly FakeCluster _cluster = new();
    private readonly AdmissionBoard _board = new();
    private readonly ScriptedBackend _aws = new();

    private BatchJobStatus Status => _cluster.StatusOf(Key);

    private Task<ReconcileResult> ReconcileAsync(bool withAws = true) =>
        new BatchJobReconciler(_cluster, BatchJobReconciler.Registry(_cluster, DispatchSettings.Default, NullLoggerFactory.Instance, withAws ? [_aws] : [], []), null, _time,
            NullLogger<BatchJobReconciler>.Instance, admissions: _board).ReconcileAsync(Key, default);

    /// <summary>The queue admits 2 of 4 on Kubernetes and sends indexes 4-7 to AWS Batch, which admits both of its 2.</summary>
    private void Decide(OverflowPlan? plan = null) => _board.Publish(new Dictionary<string, Standing>
    {
        [Key] = new Standing(Key, "burst", 2, 4, WaitReasons.QuotaExhausted, "queue burst on kubernetes has no room", 1, null, null, null, null)
        {
            Overflow = plan ?? new OverflowPlan(Backend.AwsBatch, 4, 2, 2, 2, "queue burst admits 2 of 4 indexes on kubernetes (QuotaExhausted), and overflows at once"),
        },
        [Part] = new Standing(Part, "burst", 2, 2, null, null, null, null, null, null, null),
    }, Now);

    /// <summary>The sweep applied, the queue's split decided, and the first reconcile with AWS Batch answering so.</summary>
    private async Task SplitAsync(Func<BackendRun, BackendProgress> aws)
    {
        _cluster.Apply(Specs.Object(Sweep));
        Decide();
        _aws.Next = aws;
        await ReconcileAsync();
    }

    private void FinishJob(int succeeded, int failed = 0) => _cluster.SetJobStatus(BatchJobResource.JobName(Specs.Name), new V1JobStatus
    {
        Succeeded = succeeded,
        Failed = failed,
        StartTime = Now.UtcDateTime,
        CompletionTime = Now.AddMinutes(3).UtcDateTime,
        Conditions = [new V1JobCondition { Type = failed > 0 ? "Failed" : "Complete", Status = "True" }],
    });

    [Fact]
    public async Task A_split_is_recorded_before_dispatch_and_each_backend_gets_only_its_part()
    {
        _cluster.Apply(Specs.Object(Sweep));
        Decide();
        _aws.Next = run => Progress(RunPhase.Running, succeeded: 0, active: 2, state: """{"partStart":4,"partEnd":8}""");

        await ReconcileAsync();

        // The split was written before either backend was called: the first status patch holds it and nothing else went.
        var first = _cluster.StatusPatches[0];
        Assert.Equal(["kubernetes 0-3 x2", "aws-batch 4-7 x2"], first.Backends!.Select(s => $"{s.Name} {s.Indexes} x{s.Parallelism}"));
        Assert.Null(first.JobName);

        // Kubernetes runs indexes 0-3 in the run's own Job, two at a time; AWS Batch gets 4-7 within its admission.
        var job = _cluster.Job(BatchJobResource.JobName(Specs.Name))!;
        Assert.Equal((4, 2), (job.Spec.Completions, job.Spec.Parallelism));
        Assert.Contains(job.Spec.Template.Spec.Containers[0].Env, e => e.Name == WorkloadEnvironment.RerunIndexes && e.Value == "0-3");
        var part = Assert.Single(_aws.Advanced);
        Assert.Equal(("4-7", 2, (string?)null), (part.Indexes.Ranges, part.Allowance, part.State?.GetRawText()));

        // The status sums the parts and shows each; the part's state is kept with it, Kubernetes' where it always is.
        Assert.Equal((RunPhase.Running, 8, 0, 2), (Status.Phase, Status.Total, Status.Succeeded, Status.Active));
        Assert.Equal([("kubernetes", 0), ("aws-batch", 2)], Status.Backends!.Select(s => (s.Name, s.Active)));
        Assert.Equal(4, Status.Backends![1].State!.Value.GetProperty("partStart").GetInt32());
        var overflow = Status.Find(Conditions.Overflow)!;
        Assert.Equal(("True", Conditions.Reasons.OverflowDispatched), (overflow.Status, overflow.Reason));
        Assert.Equal("indexes 4-7 go to aws-batch, 2 at a time (queue burst admits 2 of 4 indexes on kubernetes (QuotaExhausted), and overflows at once); 0-3 stay on kubernetes", overflow.Message);
        Assert.Contains(_cluster.Events, e => e.Reason == Conditions.Reasons.OverflowDispatched);
    }

    [Fact]
    public async Task A_split_is_decided_once_and_the_run_ends_when_every_part_has()
    {
        await SplitAsync(run => Progress(RunPhase.Running, succeeded: 1, active: 2, state: """{"partStart":4,"partEnd":8}"""));

        // A later cycle deciding otherwise changes nothing: the indexes stay where they went.
        Decide(new OverflowPlan(Backend.AwsBatch, 0, 0, 4, 4, "all of it"));
        FinishJob(4);
        await ReconcileAsync();
        Assert.Equal(["0-3", "4-7"], Status.Backends!.Select(s => s.Indexes));
        Assert.Equal("""{"partStart":4,"partEnd":8}""", _aws.Advanced[1].State!.Value.GetRawText());
        Assert.Equal((RunPhase.Running, 5), (Status.Phase, Status.Succeeded));
        Assert.Equal([RunPhase.Succeeded, RunPhase.Running], Status.Backends!.Select(s => s.Phase));

        _aws.Next = run => Progress(RunPhase.Succeeded, succeeded: 4, active: 0, state: """{"partStart":4,"partEnd":8}""");
        var result = await ReconcileAsync();
        Assert.Null(result.RequeueAfter);
        Assert.Equal((RunPhase.Succeeded, 8, 0), (Status.Phase, Status.Succeeded, Status.Failed));
        Assert.Equal("True", Status.Find(Conditions.Complete)!.Status);
    }

    [Fact]
    public async Task A_part_that_fails_fails_the_run_with_the_failed_indexes_of_every_part()
    {
        await SplitAsync(run => Progress(RunPhase.Failed, succeeded: 3, active: 0, state: "{}") with
        {
            Failed = 1, FailedIndexes = "6", FailureReason = "IndexesFailed", FailureMessage = "1 of 4 indexes failed",
        });
        FinishJob(4);

        await ReconcileAsync();

        Assert.Equal((RunPhase.Failed, 7, 1, "6"), (Status.Phase, Status.Succeeded, Status.Failed, Status.FailedIndexes));
        Assert.Equal("IndexesFailed", Status.Find(Conditions.Failed)!.Reason);
    }

    [Fact]
    public async Task Cancelling_a_split_run_stops_every_part()
    {
        await SplitAsync(run => Progress(RunPhase.Running, succeeded: 0, active: 2, state: """{"arrays":[{"jobId":"j-1"}]}"""));

        _cluster.Update(Key, b => b.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.CancelAnnotation] = "true" });
        await ReconcileAsync();

        Assert.NotNull(_cluster.Job(BatchJobResource.JobName(Specs.Name))!.Metadata.DeletionTimestamp);
        var cancelled = Assert.Single(_aws.Cancelled);
        Assert.Equal(("4-7", "j-1"), (cancelled.Run.Indexes.Ranges, cancelled.Run.State!.Value.GetProperty("arrays")[0].GetProperty("jobId").GetString()));
        Assert.Equal((RunPhase.Cancelled, 0), (Status.Phase, Status.Active));
        Assert.Equal([RunPhase.Cancelled, RunPhase.Cancelled], Status.Backends!.Select(s => s.Phase));
    }

    [Fact]
    public async Task Deleting_a_split_run_releases_every_part()
    {
        await SplitAsync(run => Progress(RunPhase.Running, succeeded: 0, active: 2, state: """{"arrays":[{"jobId":"j-1"}]}"""));

        _cluster.Delete(Key);
        await ReconcileAsync();
        _cluster.FinishDeletions();
        await ReconcileAsync();

        // Level-based: each look while the Job's pods go stops the part again, which AWS Batch accepts.
        Assert.NotEmpty(_aws.Cancelled);
        Assert.All(_aws.Cancelled, c => Assert.Contains("was deleted", c.Reason, StringComparison.Ordinal));
        Assert.Null(_cluster.Job(BatchJobResource.JobName(Specs.Name)));
        Assert.Null(_cluster.Find(Key));
    }

    [Fact]
    public async Task An_overflow_backend_this_controller_lacks_leaves_the_run_whole_where_it_is_and_says_why()
    {
        _cluster.Apply(Specs.Object(Sweep));
        Decide();

        await ReconcileAsync(withAws: false);
        await ReconcileAsync(withAws: false);

        Assert.Null(Status.Backends);
        var job = _cluster.Job(BatchJobResource.JobName(Specs.Name))!;
        Assert.Equal((8, 2), (job.Spec.Completions, job.Spec.Parallelism));
        var overflow = Status.Find(Conditions.Overflow)!;
        Assert.Equal(("False", Conditions.Reasons.OverflowUnavailable), (overflow.Status, overflow.Reason));
        Assert.StartsWith("queue burst would send indexes 4-7 to aws-batch (", overflow.Message, StringComparison.Ordinal);
        Assert.Contains("but aws-batch is not a backend of this controller (backends here: kubernetes); they wait on kubernetes", overflow.Message, StringComparison.Ordinal);
        Assert.Single(_cluster.Events, e => e.Reason == Conditions.Reasons.OverflowUnavailable);
    }

    [Fact]
    public async Task An_overflow_backend_that_refuses_its_part_says_so_once_and_the_other_part_goes_on()
    {
        _cluster.Apply(Specs.Object(Sweep));
        Decide();
        _aws.Next = run => Progress(RunPhase.Pending, 0, 0, "{}") with
        {
            Dispatched = false, Reason = "NotConfigured", Message = "the controller's AWS Batch settings lack JobQueue",
        };

        await ReconcileAsync();
        await ReconcileAsync();

        var overflow = Status.Find(Conditions.Overflow)!;
        Assert.Equal(("False", Conditions.Reasons.OverflowRefused), (overflow.Status, overflow.Reason));
        Assert.Equal("aws-batch does not take indexes 4-7 now: NotConfigured: the controller's AWS Batch settings lack JobQueue", overflow.Message);
        Assert.Single(_cluster.Events, e => e.Reason == Conditions.Reasons.OverflowRefused);
        Assert.NotNull(_cluster.Job(BatchJobResource.JobName(Specs.Name)));

        // Once it takes the part, the condition says so again.
        _aws.Next = run => Progress(RunPhase.Running, 0, 2, "{}");
        await ReconcileAsync();
        Assert.Equal(("True", "indexes 4-7 run on aws-batch"), (Status.Find(Conditions.Overflow)!.Status, Status.Find(Conditions.Overflow)!.Message));
    }

    [Fact]
    public async Task A_run_sent_away_whole_keeps_nothing_on_its_own_backend()
    {
        _cluster.Apply(Specs.Object(Sweep));
        Decide(new OverflowPlan(Backend.AwsBatch, 0, 0, 4, 4, "its next index would wait ~10m on kubernetes"));
        _board.Publish(new Dictionary<string, Standing>
        {
            [Key] = new Standing(Key, "burst", 0, 4, WaitReasons.QuotaExhausted, "full", 1, null, null, null, null) { Overflow = new OverflowPlan(Backend.AwsBatch, 0, 0, 4, 4, "its next index would wait ~10m on kubernetes") },
            [Part] = new Standing(Part, "burst", 4, 4, null, null, null, null, null, null, null),
        }, Now);
        _aws.Next = run => Progress(RunPhase.Running, 0, 4, "{}");

        await ReconcileAsync();

        Assert.Empty(_cluster.Jobs);
        Assert.Equal(("0-7", 4), (Assert.Single(_aws.Advanced).Indexes.Ranges, _aws.Advanced[0].Allowance));
        Assert.Equal(["", "0-7"], Status.Backends!.Select(s => s.Indexes));
        Assert.Equal((RunPhase.Running, 4), (Status.Phase, Status.Active));
    }

    [Fact]
    public async Task An_overflow_backend_that_does_not_answer_holds_up_nothing_of_the_other_part()
    {
        await SplitAsync(run => Progress(RunPhase.Running, succeeded: 1, active: 2, state: """{"partStart":4,"partEnd":8}"""));
        _aws.Transient = e => e is HttpRequestException;
        _aws.Next = run => throw new HttpRequestException("AWS had a bad minute");
        FinishJob(4);

        var result = await ReconcileAsync();

        // Kubernetes' part is recorded as it finished; AWS Batch's stands as last seen, and is looked at again soon.
        Assert.Equal([(RunPhase.Succeeded, 4, 0), (RunPhase.Running, 1, 2)], Status.Backends!.Select(s => (s.Phase!.Value, s.Succeeded, s.Active)));
        Assert.Equal((RunPhase.Running, 5), (Status.Phase, Status.Succeeded));
        Assert.Equal("""{"partStart":4,"partEnd":8}""", Status.Backends![1].State!.Value.GetRawText());
        Assert.True(result.RequeueAfter <= TimeSpan.FromSeconds(5), $"{result.RequeueAfter}");

        // A failure that does not pass by itself is the reconcile's, retried with backoff as ever.
        _aws.Transient = _ => false;
        await Assert.ThrowsAsync<HttpRequestException>(() => ReconcileAsync());
    }
}
