using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Backends;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Prometheus;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>
/// Queues on the operator's side: the reconciler runs no more than the scheduler admitted and says why the rest
/// waits; the scheduling loop reads BatchJobs and Queues as the informers hold them and writes the Queues' status.
/// </summary>
public sealed class QueueSchedulingTests
{
    private const string Key = Specs.Namespace + "/" + Specs.Name;
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly FakeTimeProvider _time = new(Now);
    private readonly FakeCluster _cluster = new();
    private readonly AdmissionBoard _board = new();

    private BatchJobStatus Status => _cluster.StatusOf(Key);

    private Task<ReconcileResult> ReconcileAsync() =>
        _cluster.ReconcileAsync(new BatchJobReconciler(_cluster, BatchJobReconciler.Registry(_cluster, DispatchSettings.Default, NullLoggerFactory.Instance, [], []), null, _time,
            NullLogger<BatchJobReconciler>.Instance, admissions: _board), Key);

    private static Standing Admit(int allowance, int wanted = 8, string? reason = null, int? position = null, string? message = null) =>
        new(Key, "research", allowance, wanted, reason, message, position, null, null, null, null);

    [Theory]
    [InlineData(1, false)]
    [InlineData(29, false)]
    [InlineData(31, true)]
    public void A_status_keeps_the_estimates_it_shows_until_they_move_as_far_as_the_board_reconciles_for(int drift, bool rewritten)
    {
        var now = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
        var shown = new BatchJobStatus { Queue = new QueueStatus { Name = "default", Allowance = 1, Wanted = 1, FinishEstimate = now, FinishEstimateP90 = now } };
        var later = now.AddSeconds(drift);
        var standing = new Standing("ns/sweep", "default", 1, 1, null, null, null, null, null, later, later);
        var progress = new BackendProgress(RunPhase.Running, 1, 0, 0, 1, null, now, null, true, "JobCreated", "", null, null, null, TimeSpan.Zero);

        var next = BatchJobReconciler.WithStanding(shown, standing, progress, 1, later).Queue!;

        Assert.Equal(rewritten ? later : now, next.FinishEstimate);
        Assert.Equal(rewritten ? later : now, next.FinishEstimateP90);
        // The board brings a BatchJob back for the same moves, and for no smaller one.
        Assert.Equal(rewritten, AdmissionBoard.Differs(standing with { FinishP50 = now, FinishP90 = now }, standing, later));
    }

    [Fact]
    public async Task Nothing_is_dispatched_before_the_scheduler_decided_and_the_reconciler_looks_again_soon()
    {
        _cluster.Apply(Specs.Object("""{"completions": 8, "parallelism": 8}"""));

        var result = await ReconcileAsync();

        Assert.Empty(_cluster.Jobs);
        Assert.Equal(TimeSpan.FromSeconds(2), result.RequeueAfter);
    }

    [Fact]
    public async Task A_sweep_with_no_room_gets_no_job_and_says_why_its_place_and_when()
    {
        _cluster.Apply(Specs.Object("""{"completions": 8, "parallelism": 8, "queue": "research"}"""));
        _board.Publish(new Dictionary<string, Standing>
        {
            [Key] = Admit(0, reason: WaitReasons.QuotaExhausted, position: 2, message: "queue research on kubernetes has no room") with
            {
                StartP50 = Now.AddMinutes(4), StartP90 = Now.AddMinutes(7), FinishP50 = Now.AddMinutes(70), FinishP90 = Now.AddMinutes(115),
            },
        }, Now);

        await ReconcileAsync();

        Assert.Empty(_cluster.Jobs);
        var queue = Status.Queue!;
        Assert.Equal(("research", 0, 8, 2, WaitReasons.QuotaExhausted), (queue.Name, queue.Allowance, queue.Wanted, queue.Position, queue.Reason));
        Assert.Equal("starts in ~4m (P90 7m), done in ~1h10m (P90 1h55m)", queue.Eta);
        Assert.Equal(Now.AddMinutes(4), queue.StartEstimate);
        var admitted = Status.Find(Conditions.Admitted)!;
        Assert.Equal(("False", WaitReasons.QuotaExhausted), (admitted.Status, admitted.Reason));
        Assert.Equal("0 of 8 indexes admitted in queue research, position 2: queue research on kubernetes has no room; starts in ~4m (P90 7m), done in ~1h10m (P90 1h55m)", admitted.Message);
        Assert.Equal(("False", BackendReasonsQueued), (Status.Find(Conditions.Dispatched)!.Status, Status.Find(Conditions.Dispatched)!.Reason));
        Assert.DoesNotContain(_cluster.Events, e => e.Type == "Warning");
    }

    private const string BackendReasonsQueued = BatchRunner.Backends.BackendReasons.Queued;

    [Fact]
    public async Task An_admitted_sweep_runs_its_job_at_the_allowance_and_an_event_says_it_was_admitted_after_waiting()
    {
        _cluster.Apply(Specs.Object("""{"completions": 8, "parallelism": 8, "queue": "research"}"""));
        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(0, reason: WaitReasons.TenantOverShare, position: 1, message: "b first") }, Now);
        await ReconcileAsync();

        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(3, reason: WaitReasons.TenantOverShare, position: 1, message: "b first") }, Now);
        await ReconcileAsync();

        Assert.Equal(3, _cluster.Job(Specs.Name)!.Spec.Parallelism);
        Assert.Contains(_cluster.Events, e => e.Reason == Conditions.Reasons.Admitted && e.Message == "admitted to queue research: 3 of 8 indexes at once");
        Assert.Equal(3, Status.Queue!.Allowance);

        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(8) }, Now);
        await ReconcileAsync();

        Assert.Equal(8, _cluster.Job(Specs.Name)!.Spec.Parallelism);
        Assert.Equal(("True", Conditions.Reasons.Admitted), (Status.Find(Conditions.Admitted)!.Status, Status.Find(Conditions.Admitted)!.Reason));
        Assert.Null(Status.Queue!.Position);
    }

    [Fact]
    public async Task A_rerun_waits_for_its_queue_and_its_job_follows_a_raised_allowance()
    {
        _cluster.Apply(Specs.Object("""{"completions": 8, "parallelism": 4, "queue": "research"}"""));
        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(4, wanted: 4) }, Now);
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Succeeded = 8, Conditions = [StatusDerivationTests.Condition("Complete")] });
        await ReconcileAsync();

        // The rerun is taken; its three indexes wait for room, then run at what is admitted, then at more.
        _cluster.Update(Key, b => b.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.RerunAnnotation] = "1-3" });
        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(0, wanted: 3, reason: WaitReasons.QuotaExhausted, position: 1, message: "full") }, Now);
        await ReconcileAsync();
        Assert.Equal((RunPhase.Running, 5), (Status.Phase, Status.Succeeded));
        Assert.Null(_cluster.Job("sweep-rerun-1"));

        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(1, wanted: 3, reason: WaitReasons.QuotaExhausted, position: 1, message: "full") }, Now);
        await ReconcileAsync();
        Assert.Equal(1, _cluster.Job("sweep-rerun-1")!.Spec.Parallelism);

        // Admitted in full, it runs at the spec's parallelism, as a first dispatch does.
        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(3, wanted: 3) }, Now);
        await ReconcileAsync();
        Assert.Equal(4, _cluster.Job("sweep-rerun-1")!.Spec.Parallelism);
    }

    [Fact]
    public async Task A_lowered_allowance_takes_the_job_down_to_the_pods_already_running_so_no_running_index_is_killed()
    {
        _cluster.Apply(Specs.Object("""{"completions": 20, "parallelism": 10}"""));
        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(10, wanted: 10) }, Now);
        await ReconcileAsync();
        // Seven active: six running, one just created and still pending.
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 7, Succeeded = 3 });
        SetPods(running: 6, pending: 1);

        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(4, wanted: 10, reason: WaitReasons.TenantOverShare, position: 1, message: "b first") }, Now);
        await ReconcileAsync();
        Assert.Equal(6, _cluster.Job(Specs.Name)!.Spec.Parallelism);

        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 2, Succeeded = 8 });
        SetPods(running: 2, pending: 0);
        await ReconcileAsync();
        Assert.Equal(4, _cluster.Job(Specs.Name)!.Spec.Parallelism);
    }

    private void SetPods(int running, int pending)
    {
        _cluster.Pods.Clear();
        for (var i = 0; i < running + pending; i++)
        {
            _cluster.Pods.Add(new V1Pod
            {
                Metadata = new V1ObjectMeta { Name = $"sweep-{i}", NamespaceProperty = Specs.Namespace, Labels = new Dictionary<string, string> { ["batchrunner.io/batchjob"] = Specs.Name } },
                Status = new V1PodStatus { Phase = i < running ? "Running" : "Pending" },
            });
        }
    }

    [Fact]
    public async Task An_admitted_sweep_its_backend_does_not_take_says_the_backend_holds_it_in_its_words()
    {
        // A Job of that name belongs to something else: the Kubernetes backend will not take the work.
        _cluster.Apply(Specs.Object("""{"completions": 8, "parallelism": 4, "queue": "research"}"""));
        var foreign = JobManifests.IndexedJob(Specs.Job(), "someone-else", _cluster.Capabilities, DispatchSettings.Default);
        _cluster.AddJob(foreign);
        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(4, wanted: 4) }, Now);

        await ReconcileAsync();

        var admitted = Status.Find(Conditions.Admitted)!;
        Assert.Equal(("False", WaitReasons.BackendThrottled), (admitted.Status, admitted.Reason));
        Assert.StartsWith("4 of 4 indexes admitted in queue research, but kubernetes does not take them now: DispatchFailed: a Job named sweep exists and belongs to something else",
            admitted.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sweep_admitted_in_full_keeps_its_job_at_the_spec_s_parallelism_as_its_tail_shrinks()
    {
        _cluster.Apply(Specs.Object("""{"completions": 6, "parallelism": 2}"""));
        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(2, wanted: 2) }, Now);
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 1, Succeeded = 5 });

        // One index left: it wants (and is admitted) one, and nothing holds it back, so its Job is left alone.
        _board.Publish(new Dictionary<string, Standing> { [Key] = Admit(1, wanted: 1) }, Now);
        await ReconcileAsync();

        Assert.Equal(2, _cluster.Job(Specs.Name)!.Spec.Parallelism);
        Assert.Empty(_cluster.JobPatches);
    }

    [Fact]
    public async Task A_queue_delegating_to_kueue_gets_a_suspended_job_labelled_for_the_local_queue_and_says_so()
    {
        _cluster.Apply(Specs.Object("""{"completions": 8, "parallelism": 4, "queue": "research"}"""));
        _board.Publish(new Dictionary<string, Standing>
        {
            [Key] = Admit(4, wanted: 4, message: "admission delegated to Kueue LocalQueue team-queue (the Job waits suspended until Kueue admits it)") with { DelegatedTo = "team-queue" },
        }, Now);

        await ReconcileAsync();

        var job = _cluster.Job(Specs.Name)!;
        Assert.Equal((true, "team-queue", 4), (job.Spec.Suspend, job.Metadata.Labels[JobManifests.KueueQueueLabel], job.Spec.Parallelism));
        Assert.Equal(("True", "DelegatedToKueue"), (Status.Find(Conditions.Admitted)!.Status, Status.Find(Conditions.Admitted)!.Reason));
        Assert.Equal("queue research: admission delegated to Kueue LocalQueue team-queue (the Job waits suspended until Kueue admits it)", Status.Find(Conditions.Admitted)!.Message);

        // The Job is adopted on the next look; while Kueue holds it, the Dispatched condition says so.
        await ReconcileAsync();
        Assert.Equal("WaitingForKueue", Status.Find(Conditions.Dispatched)!.Reason);
        Assert.Null(JobManifests.IndexedJob(Specs.Job(), Specs.Uid, _cluster.Capabilities, DispatchSettings.Default).Spec.Suspend);
    }

    [Fact]
    public async Task The_scheduler_admits_within_the_quota_lets_the_small_sweep_overtake_and_writes_the_queue_status()
    {
        var state = new State();
        state.Queue("research", """{"backends": ["kubernetes"], "quotas": {"kubernetes": {"indexes": 4}}}""");
        state.BatchJob("team-a", "large", """{"completions": 100, "parallelism": 10, "queue": "research"}""", minute: 0,
            status: """{"jobName": "large", "active": 4, "succeeded": 10, "queue": {"name": "research", "allowance": 4, "wanted": 10, "runtimes": {"count": 10, "p50Seconds": 60, "p90Seconds": 90}}}""");
        state.BatchJob("team-b", "small", """{"completions": 4, "parallelism": 4, "queue": "research"}""", minute: 1);
        var reconciled = new List<string>();
        using var scheduler = Scheduler(state, reconciled.Add);

        var result = await scheduler.CycleAsync(default);

        var large = result.Standings["team-a/large"];
        var small = result.Standings["team-b/small"];
        // Fair is two each: large starts nothing until it is down to two; small is first in line for the room.
        Assert.Equal((2, WaitReasons.TenantOverShare), (large.Allowance, large.Reason));
        Assert.Equal((0, WaitReasons.QuotaExhausted, 1), (small.Allowance, small.Reason, small.Position));
        Assert.Equal(Now.AddSeconds(15), small.StartP50);
        Assert.Equal(["team-a/large", "team-b/small"], reconciled.Order(StringComparer.Ordinal));
        var status = Assert.Single(state.Written).Status;
        Assert.Equal((2, 8 + 4, 2), ((int)status["admittedIndexes"]!, (int)status["pendingIndexes"]!, (int)status["waitingBatchJobs"]!));
        Assert.Equal("team-a 100%, team-b 0%", (string)status["usage"]!);
        Assert.Equal("True", (string)status["conditions"]![0]!["status"]!);

        // Two of a's indexes finish and its Job applied the lower allowance: both go to b, the small one.
        state.SetStatus("team-a/large", """{"jobName": "large", "active": 2, "succeeded": 12, "queue": {"name": "research", "allowance": 2, "wanted": 10}}""");
        result = await scheduler.CycleAsync(default);
        Assert.Equal((2, 2), (result.Standings["team-a/large"].Allowance, result.Standings["team-b/small"].Allowance));
    }

    [Fact]
    public async Task An_undispatched_sweep_overflows_and_a_split_one_competes_in_both_pools_within_its_parts()
    {
        var state = new State();
        state.Queue("burst", """{"backends": ["kubernetes", "aws-batch"], "quotas": {"kubernetes": {"indexes": 2}, "aws-batch": {"indexes": 3}}, "overflow": {"afterSeconds": 0}}""");
        state.BatchJob("team-a", "fresh", """{"completions": 8, "parallelism": 4, "queue": "burst"}""", minute: 0);
        var reconciled = new List<string>();
        using var scheduler = Scheduler(state, reconciled.Add);

        var result = await scheduler.CycleAsync(default);

        Assert.Equal(new OverflowPlan(Backend.AwsBatch, 4, 2, 2, 2, "queue burst admits 2 of 4 indexes on kubernetes (QuotaExhausted), and overflows at once"),
            result.Standings["team-a/fresh"].Overflow);
        // The part's standing reconciles its BatchJob, never a key no object has.
        Assert.Equal(["team-a/fresh"], reconciled);

        // Split: each part is a workload of its own backend's pool, with what is left of it.
        state.SetStatus("team-a/fresh", """
            {"jobName": "fresh", "queue": {"name": "burst", "allowance": 2, "wanted": 4},
             "backends": [{"name": "kubernetes", "indexes": "0-3", "parallelism": 2, "succeeded": 1, "active": 2},
                          {"name": "aws-batch", "indexes": "4-7", "parallelism": 2, "succeeded": 3, "active": 1}]}
            """);
        result = await scheduler.CycleAsync(default);
        var own = result.Standings["team-a/fresh"];
        var part = result.Standings[OverflowPlan.KeyOf("team-a/fresh", Backend.AwsBatch)];
        Assert.Equal((2, 2, null), (own.Allowance, own.Wanted, own.Overflow));
        Assert.Equal((1, 1), (part.Allowance, part.Wanted));
        var status = Assert.Single(state.Written.Where(w => w.Name == "burst").TakeLast(1)).Status;
        Assert.Equal(3, (int)status["admittedIndexes"]!);
    }

    [Fact]
    public async Task A_refused_queue_says_why_in_its_status_and_to_its_batchjobs_and_other_queues_go_on()
    {
        var state = new State();
        state.Queue("broken", """{"backends": ["kubernetes"], "quotas": {"kubernetes": {"cpu": "lots"}}}""");
        state.BatchJob("team-a", "stuck", """{"queue": "broken"}""", minute: 0);
        state.BatchJob("team-a", "fine", """{"completions": 2, "parallelism": 2}""", minute: 1);
        state.BatchJob("team-a", "lost", """{"queue": "nowhere"}""", minute: 2);
        using var scheduler = Scheduler(state, _ => { });

        var result = await scheduler.CycleAsync(default);

        Assert.Equal(WaitReasons.QueueNotFound, result.Standings["team-a/stuck"].Reason);
        Assert.Equal("spec.queue: queue broken is refused (spec.quotas.kubernetes.cpu: must be a cpu quantity such as 500m or 64, got \"lots\"); it is admitted once the queue is fixed",
            result.Standings["team-a/stuck"].Message);
        Assert.StartsWith("spec.queue: no queue named nowhere (queues: default)", result.Standings["team-a/lost"].Message, StringComparison.Ordinal);
        Assert.Equal((2, false), (result.Standings["team-a/fine"].Allowance, result.Standings["team-a/fine"].IsWaiting));
        var condition = Assert.Single(state.Written).Status["conditions"]![0]!;
        Assert.Equal(("False", "InvalidQueue"), ((string)condition["status"]!, (string)condition["reason"]!));
    }

    [Fact]
    public async Task A_new_leader_carries_on_from_the_usage_in_the_queue_status_and_does_not_rewrite_what_it_shows()
    {
        var state = new State();
        state.Queue("research", """{"backends": ["kubernetes"], "quotas": {"kubernetes": {"indexes": 4}}}""",
            status: $$"""{"tenants": [{"name": "team-a", "usageShareSeconds": 3600, "usageAt": "{{Now.AddHours(-1):yyyy-MM-ddTHH:mm:ssZ}}"}]}""");
        state.BatchJob("team-a", "first", """{"completions": 8, "parallelism": 8, "queue": "research"}""", minute: 0);
        state.BatchJob("team-b", "second", """{"completions": 8, "parallelism": 8, "queue": "research"}""", minute: 1);
        using var scheduler = Scheduler(state, _ => { });

        var result = await scheduler.CycleAsync(default);

        // team-a used the whole queue for the last hour (half of it forgotten after one half-life, a past share of 0.5):
        // team-b, which came later, is served first and takes three of the four indexes.
        Assert.Equal((1, 3), (result.Standings["team-a/first"].Allowance, result.Standings["team-b/second"].Allowance));
        Assert.Equal(1800, result.Usage.Single(u => u.Tenant == "team-a").ShareSeconds, precision: 3);

        state.ShowWritten();
        var again = new List<string>();
        using var next = Scheduler(state, again.Add);
        await next.CycleAsync(default);
        Assert.Single(state.Written);
    }

    private QueueScheduler Scheduler(State state, Action<string> reconcile) =>
        new(state, _board, [Backend.Kubernetes, Backend.AwsBatch], reconcile, new ControllerMetrics(new CollectorRegistry()), _time, NullLogger<QueueScheduler>.Instance);

    /// <summary>What the informers would hold, and the Queue statuses written.</summary>
    private sealed class State : IQueueState
    {
        private readonly Dictionary<string, BatchJobObject> _batchJobs = new(StringComparer.Ordinal);
        private readonly Dictionary<string, QueueObject> _queues = new(StringComparer.Ordinal);

        public List<(string Name, JsonObject Status)> Written { get; } = [];

        public IEnumerable<BatchJobObject> BatchJobs => _batchJobs.Values;

        public IEnumerable<QueueObject> Queues => _queues.Values;

        public void Queue(string name, string spec, string? status = null) => _queues[name] = new QueueObject
        {
            Metadata = new V1ObjectMeta { Name = name, Generation = 1 },
            Spec = JsonDocument.Parse(spec).RootElement.Clone(),
            Status = status is null ? null : JsonDocument.Parse(status).RootElement.Clone(),
        };

        public void BatchJob(string ns, string name, string spec, int minute, string? status = null)
        {
            var batchJob = Specs.Object(spec, name);
            batchJob.Metadata.NamespaceProperty = ns;
            batchJob.Metadata.Uid = $"uid-{ns}-{name}";
            batchJob.Metadata.CreationTimestamp = Now.AddMinutes(minute).UtcDateTime;
            batchJob.Status = status is null ? null : JsonDocument.Parse(status).RootElement.Clone();
            _batchJobs[$"{ns}/{name}"] = batchJob;
        }

        /// <summary>A status write, as the API server makes it: the object gets a new resourceVersion.</summary>
        public void SetStatus(string key, string status)
        {
            var batchJob = _batchJobs[key];
            batchJob.Status = JsonDocument.Parse(status).RootElement.Clone();
            batchJob.Metadata.ResourceVersion = (long.Parse(batchJob.Metadata.ResourceVersion ?? "0", CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture);
        }

        /// <summary>The informer sees what was written.</summary>
        public void ShowWritten()
        {
            foreach (var (name, status) in Written)
            {
                _queues[name].Status = JsonDocument.Parse(status.ToJsonString()).RootElement.Clone();
            }
        }

        public Task PatchQueueStatusAsync(string name, JsonObject status, CancellationToken cancellation)
        {
            Written.Add((name, status));
            return Task.CompletedTask;
        }
    }
}

public sealed class QueueStatusDocumentTests
{
    [Fact]
    public void A_queue_with_nothing_in_it_has_a_status_of_zeros_and_no_empty_string()
    {
        var status = QueueStatusDocument.Of(new QueueSummary("q", [Backend.Kubernetes], 0, 0, 0, []), null, 3, null, new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

        Assert.Equal("""{"observedGeneration":3,"backends":"kubernetes","pendingIndexes":0,"admittedIndexes":0,"waitingBatchJobs":0,"usage":null,"tenants":[],"conditions":[{"type":"Valid","status":"True","reason":"QueueValid","message":"the queue is valid","observedGeneration":3,"lastTransitionTime":"2026-03-01T12:00:00Z"}]}""",
            status.ToJsonString());
    }
}
