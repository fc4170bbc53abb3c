using System.Net;
using System.Text.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using Microsoft.Extensions.Logging.Abstractions;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using static BatchRunner.Kubernetes.Tests.StatusDerivationTests;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>The reconciler against an API server in memory: what it writes, in what order, and what the BatchJob then says.</summary>
public sealed class BatchJobReconcilerTests
{
    private const string Key = Specs.Namespace + "/" + Specs.Name;
    private const string Sweep = """{"parallelism": 2, "sweep": {"grid": {"servers": [1, 2], "rate": [0.5, 0.9]}, "repeats": 2}}""";

    /// <summary>A listed sweep whose plan is larger than travels in a Job (<see cref="PodEntrypoint.MaxInlinePlanBytes"/>).</summary>
    private static readonly string LongList =
        """{"parallelism": 2, "sweep": {"list": [""" + string.Join(", ", Enumerable.Range(0, 1000).Select(i => $$"""{"label": "point-{{i:D5}}", "rate": {{i}}}""")) + "]}}";

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private FakeCluster _cluster = new();

    private BatchJobStatus Status => _cluster.StatusOf(Key);

    private V1Job Job => _cluster.Job(Specs.Name) ?? throw new InvalidOperationException("no Job");

    [Fact]
    public async Task Reconciling_twice_creates_exactly_one_job_carrying_its_plan()
    {
        _cluster.Apply(Specs.Object(Sweep));

        await ReconcileAsync();
        await ReconcileAsync();

        Assert.Single(_cluster.Jobs);
        Assert.Empty(_cluster.ConfigMaps);
        Assert.Single(_cluster.Writes, w => w == "create-job sweep");
        var plan = PodEntrypoint.PlanFiles(Specs.Job(Sweep));
        plan.Remove(PodEntrypoint.ScriptKey);
        Assert.Equal(plan, JobManifests.InlinePlanOf(Job));
        Assert.Equal(RunIdentity.For(Specs.Job(Sweep)), Status.RunId);
        Assert.Equal((Specs.Name, 8), (Status.JobName, Status.Total));
        AssertCondition(Conditions.Dispatched, "True", Conditions.Reasons.JobCreated);
        Assert.Single(_cluster.Events, e => e.Reason == "Dispatched");
    }

    [Fact]
    public async Task A_kubernetes_dispatch_costs_three_calls_the_job_one_event_and_one_status_write_with_the_first_progress()
    {
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);

        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        // No finalizer (the Job goes with its owner), no ConfigMap (the plan travels in the Job); the status waits for
        // the Job's own watch event.
        Assert.Equal(["create-job sweep"], _cluster.Writes);
        Assert.Equal(["Dispatched"], _cluster.Events.Select(e => e.Reason));
        Assert.Null(_cluster.Find(Key)!.Metadata.Finalizers);

        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 2 });
        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        Assert.Equal(["create-job sweep", "status"], _cluster.Writes);
        Assert.Equal((RunPhase.Running, Specs.Name, 2), (Status.Phase, Status.JobName, Status.Active));
        AssertCondition(Conditions.Dispatched, "True", Conditions.Reasons.JobCreated);
        AssertCondition(Conditions.SpecApplied, "True", Conditions.Reasons.UpToDate);
        Assert.Equal(["Dispatched"], _cluster.Events.Select(e => e.Reason));
    }

    [Fact]
    public async Task The_first_small_plan_in_a_namespace_creates_its_shared_scripts_once_and_a_copy_deleted_by_hand_is_made_again()
    {
        _cluster.SharedScripts.Clear();
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);

        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.Equal([$"create-configmap {PodEntrypoint.SharedScriptsName}", "create-job sweep"], _cluster.Writes);

        // Deleted while the Job still has pods to start: a later look makes it again (at most every five minutes).
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 2, StartTime = _time.GetUtcNow().UtcDateTime });
        _cluster.SharedScripts.Clear();
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.Empty(_cluster.SharedScripts);
        _time.Advance(TimeSpan.FromMinutes(5));
        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        Assert.Equal([Specs.Namespace], _cluster.SharedScripts);
        Assert.Equal(2, _cluster.Writes.Count(w => w == $"create-configmap {PodEntrypoint.SharedScriptsName}"));
        Assert.Single(_cluster.Jobs);
    }

    [Fact]
    public async Task Shared_scripts_the_api_server_refuses_leave_the_batchjob_undispatched_saying_why()
    {
        _cluster.SharedScripts.Clear();
        _cluster.RefuseSharedScripts = "exceeded quota: configmaps";
        _cluster.Apply(Specs.Object(Sweep));

        await ReconcileAsync();

        Assert.Empty(_cluster.Jobs);
        var refused = AssertCondition(Conditions.Dispatched, "False", Conditions.Reasons.JobRefused);
        Assert.Contains(PodEntrypoint.SharedScriptsName, refused.Message, StringComparison.Ordinal);
        Assert.Contains("exceeded quota", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Another_versions_shared_scripts_are_deleted_once_no_unfinished_job_mounts_them_and_nothing_else_is()
    {
        const string older = "batchrunner-entrypoint-0123456789";
        const string notOurs = "batchrunner-entrypoint-fedcba9876";
        var managed = new Dictionary<string, string> { [BatchJobResource.ManagedByLabel] = BatchJobResource.ManagedByValue };
        await _cluster.CreateConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = older, NamespaceProperty = Specs.Namespace, Labels = managed } }, default);
        await _cluster.CreateConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = notOurs, NamespaceProperty = Specs.Namespace } }, default);
        // A Job the version before made, its pods still to run, mounting that version's scripts.
        await _cluster.CreateJobAsync(new V1Job
        {
            Metadata = new V1ObjectMeta { Name = "earlier", NamespaceProperty = Specs.Namespace, Labels = managed },
            Spec = new V1JobSpec
            {
                Template = new V1PodTemplateSpec
                {
                    Spec = new V1PodSpec
                    {
                        Volumes = [new V1Volume { Name = "plan", Projected = new V1ProjectedVolumeSource { Sources = [new V1VolumeProjection { ConfigMap = new V1ConfigMapProjection { Name = older } }] } }],
                    },
                },
            },
        }, default);
        _cluster.Writes.Clear();
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);

        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.Equal(["create-job sweep"], _cluster.Writes);

        // Once that Job is done, the next look (every five minutes while the namespace dispatches) deletes them.
        _cluster.SetJobStatus("earlier", new V1JobStatus { Conditions = [new V1JobCondition { Type = "Complete", Status = "True" }] });
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 2, StartTime = _time.GetUtcNow().UtcDateTime });
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.DoesNotContain(_cluster.Writes, w => w.StartsWith("delete-configmap", StringComparison.Ordinal));
        _time.Advance(TimeSpan.FromMinutes(5));
        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        Assert.Single(_cluster.Writes, $"delete-configmap {older}");
        Assert.Equal([notOurs], _cluster.ConfigMaps.Select(m => m.Metadata.Name));
        Assert.Equal([Specs.Namespace], _cluster.SharedScripts);
    }

    [Fact]
    public async Task A_refused_list_of_configmaps_leaves_other_versions_scripts_and_dispatch_goes_on()
    {
        _cluster.RefuseConfigMapList = "configmaps is forbidden: cannot list resource configmaps";
        _cluster.Apply(Specs.Object(Sweep));

        await ReconcileAsync();

        Assert.Single(_cluster.Jobs);
        AssertCondition(Conditions.Dispatched, "True", Conditions.Reasons.JobCreated);
    }

    [Fact]
    public async Task A_job_its_controller_has_not_counted_yet_is_waited_for_so_one_status_write_says_it_runs()
    {
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Job.Metadata.CreationTimestamp = _time.GetUtcNow().UtcDateTime;

        // The Job's own watch event, before the Job controller counted its pods: nothing to write yet, another look soon.
        _time.Advance(TimeSpan.FromSeconds(1));
        var waiting = await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.Equal(["create-job sweep"], _cluster.Writes);
        Assert.Equal(TimeSpan.FromSeconds(4), waiting.RequeueAfter);

        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 2, StartTime = _time.GetUtcNow().UtcDateTime });
        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        Assert.Equal(["create-job sweep", "status"], _cluster.Writes);
        Assert.Equal(RunPhase.Running, Status.Phase);
    }

    [Fact]
    public async Task While_new_batchjobs_keep_arriving_an_uncounted_jobs_first_status_write_waits_longer_and_says_so()
    {
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Job.Metadata.CreationTimestamp = _time.GetUtcNow().UtcDateTime;

        // Six seconds on, a quiet controller would write Pending; a busy one leaves it for the arrivals to pause.
        _cluster.Busy = true;
        _time.Advance(TimeSpan.FromSeconds(6));
        var waiting = await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.Equal(["create-job sweep"], _cluster.Writes);
        Assert.True(waiting.AwaitsReport);
        Assert.Equal(TimeSpan.FromSeconds(24), waiting.RequeueAfter);

        // Arrivals paused: the look the operator hands back writes it.
        _cluster.Busy = false;
        var written = await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.False(written.AwaitsReport);
        Assert.Equal(["create-job sweep", "status"], _cluster.Writes);
        Assert.Equal((RunPhase.Pending, Specs.Name), (Status.Phase, Status.JobName));
    }

    [Fact]
    public async Task A_busy_controller_writes_the_first_status_all_the_same_once_the_job_waited_half_a_minute()
    {
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Job.Metadata.CreationTimestamp = _time.GetUtcNow().UtcDateTime;
        _cluster.Busy = true;

        _time.Advance(TimeSpan.FromSeconds(31));
        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        Assert.Equal(["create-job sweep", "status"], _cluster.Writes);
    }

    [Fact]
    public async Task A_job_not_counted_within_seconds_has_its_pending_status_written_all_the_same()
    {
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Job.Metadata.CreationTimestamp = _time.GetUtcNow().UtcDateTime;

        _time.Advance(TimeSpan.FromSeconds(6));
        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        Assert.Equal(["create-job sweep", "status"], _cluster.Writes);
        Assert.Equal((RunPhase.Pending, Specs.Name), (Status.Phase, Status.JobName));
        AssertCondition(Conditions.Dispatched, "True", Conditions.Reasons.JobCreated);
    }

    [Fact]
    public async Task While_the_job_controller_counts_other_jobs_an_uncounted_job_waits_its_turn_for_up_to_two_minutes()
    {
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Job.Metadata.CreationTimestamp = _time.GetUtcNow().UtcDateTime;
        _cluster.JobsBeingCounted = true;

        // Past the first window, behind a Job controller that is working through a burst: still one write to come.
        _time.Advance(TimeSpan.FromSeconds(50));
        var waiting = await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.Equal(["create-job sweep"], _cluster.Writes);
        Assert.True(waiting.AwaitsReport);
        Assert.Equal(TimeSpan.FromSeconds(70), waiting.RequeueAfter);

        // Its turn never came: two minutes on, the status says where the run stands all the same.
        _time.Advance(TimeSpan.FromSeconds(70));
        var written = await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.False(written.AwaitsReport);
        Assert.Equal(["create-job sweep", "status"], _cluster.Writes);
        Assert.Equal((RunPhase.Pending, Specs.Name), (Status.Phase, Status.JobName));
    }

    [Fact]
    public async Task Once_the_job_controller_stops_counting_an_uncounted_job_past_its_window_has_its_status_written()
    {
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Job.Metadata.CreationTimestamp = _time.GetUtcNow().UtcDateTime;
        _cluster.JobsBeingCounted = true;
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.True((await reconciler.ReconcileAsync(Key, CancellationToken.None)).AwaitsReport);

        _cluster.JobsBeingCounted = false;
        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        Assert.Equal(["create-job sweep", "status"], _cluster.Writes);
        Assert.Equal(RunPhase.Pending, Status.Phase);
    }

    [Fact]
    public async Task A_job_found_before_the_status_named_its_run_is_followed_as_its_own_run_when_the_spec_changed_since()
    {
        _cluster.Apply(Specs.Object(Sweep));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);
        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        EditSpec(Sweep.Replace("\"repeats\": 2", "\"repeats\": 3", StringComparison.Ordinal));
        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        Assert.Single(_cluster.Jobs);
        var dispatched = RunIdentity.For(Specs.Job(Sweep));
        Assert.Equal(dispatched, Status.RunId);
        var refused = AssertCondition(Conditions.SpecApplied, "False", Conditions.Reasons.ImmutableFieldChanged);
        Assert.Contains($"run {dispatched} goes on", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_plan_too_large_to_travel_with_its_job_goes_in_a_configmap_first()
    {
        _cluster.Apply(Specs.Object(LongList));

        await ReconcileAsync();

        Assert.Equal(["create-configmap sweep-plan", "create-job sweep", "status"], _cluster.Writes);
        Assert.Equal(PodEntrypoint.PlanFiles(Specs.Job(LongList)), _cluster.ConfigMap("sweep-plan")!.Data);
        Assert.Null(JobManifests.InlinePlanOf(Job));
        Assert.Equal("sweep-plan", Job.Spec.Template.Spec.Volumes.Single(v => v.Name == "plan").ConfigMap.Name);
    }

    [Fact]
    public async Task A_reconcile_that_changes_nothing_writes_nothing()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        await ReconcileAsync();
        var writes = _cluster.Writes.Count;
        var events = _cluster.Events.Count;

        var result = await ReconcileAsync();

        Assert.Equal(writes, _cluster.Writes.Count);
        Assert.Equal(events, _cluster.Events.Count);
        Assert.Equal(TimeSpan.FromSeconds(60), result.RequeueAfter);
    }

    [Fact]
    public async Task A_job_created_before_the_controller_died_is_adopted_not_recreated()
    {
        var job = Specs.Job(Sweep);
        _cluster.Apply(Specs.Object(Sweep));
        _cluster.AddJob(JobManifests.IndexedJob(job, Specs.Uid, _cluster.Capabilities, DispatchSettings.Default));

        await ReconcileAsync();

        Assert.DoesNotContain(_cluster.Writes, w => w.StartsWith("create-", StringComparison.Ordinal));
        Assert.Equal((Specs.Name, RunIdentity.For(job)), (Status.JobName, Status.RunId));
        AssertCondition(Conditions.Dispatched, "True", Conditions.Reasons.JobCreated);
        AssertCondition(Conditions.SpecApplied, "True", Conditions.Reasons.UpToDate);
    }

    [Fact]
    public async Task A_plan_left_by_a_controller_that_died_before_creating_the_job_is_reused()
    {
        var job = Specs.Job(LongList);
        _cluster.Apply(Specs.Object(LongList));
        await _cluster.CreateConfigMapAsync(JobManifests.PlanConfigMap(job, Specs.Uid, PodEntrypoint.PlanFiles(job)), CancellationToken.None);
        _cluster.Writes.Clear();

        await ReconcileAsync();

        Assert.Equal(["create-job sweep", "status"], _cluster.Writes);
    }

    [Fact]
    public async Task A_plan_from_an_earlier_spec_is_replaced_before_the_job_is_created()
    {
        var earlier = Specs.Job(LongList.Replace("point-", "earlier-", StringComparison.Ordinal));
        _cluster.Apply(Specs.Object(LongList));
        await _cluster.CreateConfigMapAsync(JobManifests.PlanConfigMap(earlier, Specs.Uid, PodEntrypoint.PlanFiles(earlier)), CancellationToken.None);

        await ReconcileAsync();

        var plan = _cluster.ConfigMap("sweep-plan")!;
        Assert.Equal(RunIdentity.For(Specs.Job(LongList)), plan.Metadata.Labels[BatchRunner.Kubernetes.BatchJobResource.RunLabel]);
        Assert.Equal(PodEntrypoint.PlanFiles(Specs.Job(LongList)), plan.Data);
    }

    [Fact]
    public async Task An_invalid_spec_gets_Valid_False_naming_the_field_an_event_and_no_job()
    {
        _cluster.Apply(Specs.Object("""{"parallelism": 0}"""));

        var result = await ReconcileAsync();

        var valid = AssertCondition(Conditions.Valid, "False", Conditions.Reasons.InvalidSpec);
        Assert.Contains("spec.parallelism: must be >= 1, got 0", valid.Message, StringComparison.Ordinal);
        var warning = Assert.Single(_cluster.Events);
        Assert.Equal(("Warning", "InvalidSpec"), (warning.Type, warning.Reason));
        Assert.Contains("spec.parallelism: must be >= 1, got 0", warning.Message, StringComparison.Ordinal);
        Assert.Empty(_cluster.Jobs);
        Assert.Empty(_cluster.ConfigMaps);
        Assert.Equal(RunPhase.Failed, Status.Phase);
        Assert.Null(result.RequeueAfter);
    }

    [Fact]
    public async Task Every_error_of_an_invalid_spec_is_named()
    {
        _cluster.Apply(Specs.Object("""{"parallelism": 0, "colour": "red", "image": null}"""));

        await ReconcileAsync();

        var message = Status.Find(Conditions.Valid)!.Message;
        Assert.Contains("spec.parallelism", message, StringComparison.Ordinal);
        Assert.Contains("spec.colour: unknown field", message, StringComparison.Ordinal);
        Assert.Contains("spec.image: required for backend kubernetes", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_reconcile_of_an_unchanged_invalid_spec_records_no_second_event()
    {
        _cluster.Apply(Specs.Object("""{"parallelism": 0}"""));
        await ReconcileAsync();

        await ReconcileAsync();

        Assert.Single(_cluster.Events);
        Assert.Single(_cluster.StatusPatches);
    }

    [Fact]
    public async Task An_invalid_spec_that_is_fixed_is_dispatched()
    {
        _cluster.Apply(Specs.Object("""{"parallelism": 0}"""));
        await ReconcileAsync();

        _cluster.Update(Key, b => (b.Spec, b.Metadata.Generation) = (JsonSerializer.SerializeToElement(Specs.Spec(Sweep)), 2));
        await ReconcileAsync();

        Assert.Single(_cluster.Jobs);
        AssertCondition(Conditions.Valid, "True", Conditions.Reasons.SpecValid);
        AssertCondition(Conditions.Dispatched, "True", Conditions.Reasons.JobCreated);
        Assert.Equal(RunPhase.Pending, Status.Phase);
    }

    [Fact]
    public async Task A_batchjob_for_a_backend_this_controller_does_not_run_is_refused_naming_spec_backend()
    {
        _cluster.Apply(Specs.Object("""{"backend": "local"}"""));

        await ReconcileAsync();

        var valid = AssertCondition(Conditions.Valid, "False", Conditions.Reasons.BackendUnavailable);
        Assert.StartsWith("spec.backend: local is not enabled in this controller: ", valid.Message, StringComparison.Ordinal);
        Assert.EndsWith("(backends here: kubernetes)", valid.Message, StringComparison.Ordinal);
        Assert.Null(Status.Find(Conditions.Dispatched));
        Assert.Equal(RunPhase.Failed, Status.Phase);
        Assert.Empty(_cluster.Jobs);
        Assert.Empty(_cluster.ConfigMaps);
    }

    [Fact]
    public async Task Status_follows_the_job()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        Assert.Equal((RunPhase.Pending, 8, 0, 0), (Status.Phase, Status.Total, Status.Succeeded, Status.Active));

        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 2, Succeeded = 3, StartTime = new DateTime(2026, 3, 1, 12, 0, 5, DateTimeKind.Utc) });
        await ReconcileAsync();
        Assert.Equal((RunPhase.Running, 8, 3, 2, 0), (Status.Phase, Status.Total, Status.Succeeded, Status.Active, Status.Failed));
        Assert.DoesNotContain(_cluster.Events, e => e.Reason is "Running" or "Pending");

        var finished = new DateTime(2026, 3, 1, 12, 10, 0, DateTimeKind.Utc);
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Succeeded = 8, CompletionTime = finished, Conditions = [Condition("Complete")] });
        var result = await ReconcileAsync();
        Assert.Equal((RunPhase.Succeeded, 8, 0), (Status.Phase, Status.Succeeded, Status.Active));
        Assert.Equal(new DateTimeOffset(finished), Status.CompletionTime);
        AssertCondition(Conditions.Complete, "True", Conditions.Reasons.AllIndexesSucceeded);
        Assert.Contains(_cluster.Events, e => e is ("Normal", "Succeeded", "all 8 indexes succeeded"));
        Assert.Null(result.RequeueAfter);
    }

    [Fact]
    public async Task A_rerun_of_the_failed_indexes_runs_them_in_a_job_of_their_own_and_the_status_counts_the_whole_run()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Succeeded = 5, Failed = 6, FailedIndexes = "1,4-5", Conditions = [Condition("Failed", "FailedIndexes", "Job has failed indexes")] });
        await ReconcileAsync();
        Assert.Equal(RunPhase.Failed, Status.Phase);

        Annotate("failed");
        await ReconcileAsync();

        // Taken: the chosen indexes leave the outcome and run again in a Job of their own.
        Assert.Equal((RunPhase.Running, 5, 0, (string?)null), (Status.Phase, Status.Succeeded, Status.Failed, Status.FailedIndexes));
        Assert.Equal(new RerunStatus { Request = "failed", Number = 1, Indexes = "1,4-5" }, Status.Rerun);
        AssertCondition(Conditions.Rerun, "True", Conditions.Reasons.RerunTaken);
        Assert.Null(Status.Find(Conditions.Failed));
        var rerun = _cluster.Job("sweep-rerun-1") ?? throw new InvalidOperationException("no rerun Job");
        Assert.Equal((3, "1,4-5"), (rerun.Spec.Completions, rerun.Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == WorkloadEnvironment.RerunIndexes).Value));
        Assert.Contains(_cluster.Events, e => e is ("Normal", "RerunTaken", _));

        // Its position 2 (index 5) fails again: the run fails with exactly that index.
        _cluster.SetJobStatus("sweep-rerun-1", new V1JobStatus { Succeeded = 2, Failed = 1, FailedIndexes = "2", Conditions = [Condition("Failed", "FailedIndexes", "Job has failed indexes")] });
        await ReconcileAsync();
        Assert.Equal((RunPhase.Failed, 7, 1, "5"), (Status.Phase, Status.Succeeded, Status.Failed, Status.FailedIndexes));

        // The same request is not taken twice; a new one (another tag) is, and the run succeeds.
        await ReconcileAsync();
        Assert.Null(_cluster.Job("sweep-rerun-2"));
        Annotate("failed@2");
        await ReconcileAsync();
        var second = _cluster.Job("sweep-rerun-2") ?? throw new InvalidOperationException("no second rerun Job");
        Assert.Equal((1, "5"), (second.Spec.Completions, second.Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == WorkloadEnvironment.RerunIndexes).Value));
        _cluster.SetJobStatus("sweep-rerun-2", new V1JobStatus { Succeeded = 1, Conditions = [Condition("Complete")] });
        await ReconcileAsync();
        Assert.Equal((RunPhase.Succeeded, 8, 0, 2), (Status.Phase, Status.Succeeded, Status.Failed, Status.Rerun!.Number));
        AssertCondition(Conditions.Complete, "True", Conditions.Reasons.AllIndexesSucceeded);
    }

    [Fact]
    public async Task Cancelling_during_a_rerun_stops_the_rerun_job()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Succeeded = 8, Conditions = [Condition("Complete")] });
        await ReconcileAsync();
        Annotate("0-1");
        await ReconcileAsync();
        Assert.NotNull(_cluster.Job("sweep-rerun-1"));

        _cluster.Update(Key, b => b.Metadata.Annotations![BatchJobResource.CancelAnnotation] = "true");
        await ReconcileAsync();

        Assert.Equal(RunPhase.Cancelled, Status.Phase);
        Assert.Contains("delete-job sweep-rerun-1", _cluster.Writes);
    }

    [Theory]
    [InlineData("failed", "rerun \"failed\" refused: the run has no failed indexes")]
    [InlineData("8", "rerun \"8\" refused: index 8 is outside the run: it has 8 indexes (0 to 7)")]
    [InlineData("all", "rerun \"all\" refused: \"all\" is neither failed nor indexes such as 3,7-9")]
    public async Task A_rerun_that_chooses_nothing_is_refused_with_why_and_changes_nothing(string request, string message)
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Succeeded = 8, Conditions = [Condition("Complete")] });
        await ReconcileAsync();

        Annotate(request);
        await ReconcileAsync();

        Assert.Equal((RunPhase.Succeeded, 8, 0), (Status.Phase, Status.Succeeded, Status.Rerun!.Number));
        Assert.Equal(message, AssertCondition(Conditions.Rerun, "False", Conditions.Reasons.RerunRefused).Message);
        Assert.Single(_cluster.Jobs);
        Assert.Contains(_cluster.Events, e => e.Type == "Warning" && e.Reason == "RerunRefused" && e.Message == message);
    }

    [Fact]
    public async Task A_rerun_asked_while_the_run_goes_waits_for_its_end()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 2, Succeeded = 3 });
        Annotate("0-1");
        await ReconcileAsync();
        Assert.Null(Status.Rerun);

        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Succeeded = 8, Conditions = [Condition("Complete")] });
        await ReconcileAsync();
        await ReconcileAsync();

        Assert.Equal((RunPhase.Running, 6, 1), (Status.Phase, Status.Succeeded, Status.Rerun?.Number));
        Assert.Equal(2, _cluster.Job("sweep-rerun-1")?.Spec.Completions);
    }

    private void Annotate(string request) =>
        _cluster.Update(Key, b => b.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.RerunAnnotation] = request });

    [Fact]
    public async Task A_failed_job_fails_the_batchjob_with_its_reason_and_failed_indexes()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();

        _cluster.SetJobStatus(Specs.Name, new V1JobStatus
        {
            Succeeded = 5,
            Failed = 6,
            FailedIndexes = "1,4-5",
            Conditions = [Condition("Failed", "FailedIndexes", "Job has failed indexes")],
        });
        await ReconcileAsync();

        Assert.Equal((RunPhase.Failed, 3, "1,4-5"), (Status.Phase, Status.Failed, Status.FailedIndexes));
        var failed = AssertCondition(Conditions.Failed, "True", "FailedIndexes");
        Assert.Equal("Job has failed indexes; failed indexes: 1,4-5", failed.Message);
        Assert.Contains(_cluster.Events, e => e.Type == "Warning" && e.Reason == "Failed" && e.Message.Contains("1,4-5", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_failed_indexes_in_job_status_they_are_found_from_the_pods()
    {
        _cluster = new FakeCluster(new ClusterCapabilities(1, 27));
        _cluster.Apply(Specs.Object("""{"completions": 4, "parallelism": 2, "retry": {"attempts": 2}}"""));
        await ReconcileAsync();
        _cluster.Pods.AddRange([Pod(0, "Succeeded"), Pod(1, "Failed"), Pod(1, "Failed"), Pod(2, "Failed"), Pod(2, "Succeeded"), Pod(3, "Failed")]);

        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 1, Succeeded = 2, Failed = 4 });
        await ReconcileAsync();

        // Index 1 is out of attempts; index 3 may still be retried.
        Assert.Equal((RunPhase.Running, 1, "1"), (Status.Phase, Status.Failed, Status.FailedIndexes));
    }

    [Fact]
    public async Task A_finished_batchjob_whose_job_was_removed_after_its_ttl_is_not_run_again()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Succeeded = 8, Conditions = [Condition("Complete")] });
        await ReconcileAsync();

        await _cluster.DeleteJobAsync(Specs.Namespace, Specs.Name, CancellationToken.None);
        _cluster.FinishDeletions();
        await ReconcileAsync();

        Assert.Empty(_cluster.Jobs);
        Assert.Single(_cluster.Writes, w => w == "create-job sweep");
        Assert.Equal((RunPhase.Succeeded, 8), (Status.Phase, Status.Succeeded));
    }

    [Fact]
    public async Task observedGeneration_is_the_generation_reconciled()
    {
        _cluster.Apply(Specs.Object(Sweep, generation: 3));
        await ReconcileAsync();
        Assert.Equal(3, Status.ObservedGeneration);
        Assert.All(Status.Conditions, c => Assert.Equal(3, c.ObservedGeneration));

        _cluster.Update(Key, b => (b.Spec, b.Metadata.Generation) = (JsonSerializer.SerializeToElement(Specs.Spec(Sweep.Replace("\"parallelism\": 2", "\"parallelism\": 3", StringComparison.Ordinal))), 4));
        await ReconcileAsync();

        Assert.Equal(4, Status.ObservedGeneration);
        Assert.Equal(4, Status.Find(Conditions.Valid)!.ObservedGeneration);
    }

    [Fact]
    public async Task A_parallelism_change_patches_the_running_job()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();

        EditSpec(Sweep.Replace("\"parallelism\": 2", "\"parallelism\": 5, \"deadlineSeconds\": 599.5", StringComparison.Ordinal));
        await ReconcileAsync();

        Assert.Equal([(Specs.Name, 5, 600L)], _cluster.JobPatches.Select(p => (p.Name, p.Parallelism, p.ActiveDeadlineSeconds)));
        Assert.Equal((5, 600L), (Job.Spec.Parallelism, Job.Spec.ActiveDeadlineSeconds));
        AssertCondition(Conditions.SpecApplied, "True", Conditions.Reasons.UpToDate);
        Assert.Equal(RunIdentity.For(Specs.Job(Sweep)), Status.RunId);

        await ReconcileAsync();
        Assert.Single(_cluster.JobPatches);
    }

    [Fact]
    public async Task A_change_to_the_command_is_refused_visibly()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        var dispatched = k8s.KubernetesJson.Serialize(Job);
        var writes = _cluster.Writes.Count;

        EditSpec("""{"command": ["python", "sim2.py"], """ + Sweep[1..]);
        await ReconcileAsync();
        await ReconcileAsync();

        var refused = AssertCondition(Conditions.SpecApplied, "False", Conditions.Reasons.ImmutableFieldChanged);
        Assert.Contains("spec.command", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("spec.sweep", refused.Message, StringComparison.Ordinal);
        var warning = Assert.Single(_cluster.Events, e => e.Reason == "ImmutableFieldChanged");
        Assert.Equal("Warning", warning.Type);
        Assert.Equal(dispatched, k8s.KubernetesJson.Serialize(Job));
        Assert.Equal(["status"], _cluster.Writes.Skip(writes));
        Assert.Equal(RunIdentity.For(Specs.Job(Sweep)), Status.RunId);
    }

    [Fact]
    public async Task A_change_to_the_timeout_or_the_attempts_is_refused_and_parallelism_is_not_applied_with_it()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();

        EditSpec(Sweep.Replace("\"parallelism\": 2", "\"parallelism\": 4, \"timeoutSeconds\": 30, \"retry\": {\"attempts\": 3}", StringComparison.Ordinal));
        await ReconcileAsync();

        var refused = AssertCondition(Conditions.SpecApplied, "False", Conditions.Reasons.ImmutableFieldChanged);
        Assert.Contains("spec.timeoutSeconds", refused.Message, StringComparison.Ordinal);
        Assert.Contains("spec.retry.attempts", refused.Message, StringComparison.Ordinal);
        Assert.Empty(_cluster.JobPatches);
    }

    [Fact]
    public async Task Deleting_leaves_the_job_to_the_garbage_collector_and_writes_nothing()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        var writes = _cluster.Writes.Count;
        _cluster.Delete(Key);

        var result = await ReconcileAsync();

        Assert.Null(result.RequeueAfter);
        Assert.Null(_cluster.Find(Key));
        Assert.Equal(writes, _cluster.Writes.Count);
    }

    [Fact]
    public async Task A_batchjob_holding_the_finalizer_of_an_earlier_version_is_released_job_and_plan_first()
    {
        _cluster.Apply(Specs.Object(LongList));
        await ReconcileAsync();
        _cluster.Update(Key, b => b.Metadata.Finalizers = ["batchrunner.io/cleanup"]);
        _cluster.Delete(Key);

        var first = await ReconcileAsync();

        Assert.Equal(TimeSpan.FromSeconds(1), first.RequeueAfter);
        Assert.Contains("delete-job sweep", _cluster.Writes);
        Assert.Contains("delete-configmap sweep-plan", _cluster.Writes);
        Assert.Contains("batchrunner.io/cleanup", _cluster.Find(Key)!.Metadata.Finalizers);

        _cluster.FinishDeletions();
        var second = await ReconcileAsync();

        Assert.Null(second.RequeueAfter);
        Assert.Null(_cluster.Find(Key));
        Assert.Equal("finalizers", _cluster.Writes[^1]);
    }

    [Fact]
    public async Task Deleting_leaves_a_job_of_the_same_name_owned_by_something_else()
    {
        _cluster.AddJob(ForeignJob());
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        _cluster.Update(Key, b => b.Metadata.Finalizers = ["batchrunner.io/cleanup"]);
        _cluster.Delete(Key);

        var result = await ReconcileAsync();

        Assert.Null(result.RequeueAfter);
        Assert.DoesNotContain("delete-job sweep", _cluster.Writes);
        Assert.Null(Job.Metadata.DeletionTimestamp);
        Assert.Null(_cluster.Find(Key));
    }

    [Fact]
    public async Task The_cancel_annotation_deletes_the_job_and_marks_the_batchjob_cancelled()
    {
        _cluster.Apply(Specs.Object(Sweep));
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 2, Succeeded = 1 });
        await ReconcileAsync();

        _cluster.Update(Key, b => b.Metadata.Annotations = new Dictionary<string, string> { ["batchrunner.io/cancel"] = "true" });
        var result = await ReconcileAsync();

        Assert.Null(result.RequeueAfter);
        Assert.Contains("delete-job sweep", _cluster.Writes);
        Assert.Equal((RunPhase.Cancelled, 0, 1), (Status.Phase, Status.Active, Status.Succeeded));
        Assert.Equal(_time.GetUtcNow(), Status.CompletionTime);
        AssertCondition(Conditions.Failed, "True", Conditions.Reasons.Cancelled);
        Assert.Contains(_cluster.Events, e => e is ("Normal", "Cancelled", _));

        _cluster.FinishDeletions();
        await ReconcileAsync();
        Assert.Empty(_cluster.Jobs);
        Assert.Equal(RunPhase.Cancelled, Status.Phase);
        Assert.Single(_cluster.Writes, w => w == "create-job sweep");
    }

    [Fact]
    public async Task On_a_1_20_cluster_the_batchjob_says_indexed_jobs_are_unsupported()
    {
        _cluster = new FakeCluster(ClusterCapabilities.FromVersion("1", "20"));
        _cluster.Apply(Specs.Object(Sweep));

        await ReconcileAsync();

        var degraded = AssertCondition(Conditions.Degraded, "True", Conditions.Reasons.IndexedJobsUnsupported);
        Assert.Contains("Kubernetes 1.20", degraded.Message, StringComparison.Ordinal);
        Assert.Contains("exit 70", degraded.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_current_cluster_is_not_degraded()
    {
        _cluster.Apply(Specs.Object(Sweep));

        await ReconcileAsync();

        Assert.Null(Status.Find(Conditions.Degraded));
    }

    [Fact]
    public async Task A_job_of_the_same_name_owned_by_something_else_is_not_taken_over()
    {
        _cluster.AddJob(ForeignJob());
        var before = k8s.KubernetesJson.Serialize(Job);
        _cluster.Apply(Specs.Object(Sweep));

        var result = await ReconcileAsync();

        var dispatched = AssertCondition(Conditions.Dispatched, "False", Conditions.Reasons.DispatchFailed);
        Assert.Contains("belongs to something else", dispatched.Message, StringComparison.Ordinal);
        Assert.Equal(before, k8s.KubernetesJson.Serialize(Job));
        Assert.DoesNotContain(_cluster.Writes, w => w.Contains("job", StringComparison.Ordinal));
        Assert.Equal(RunPhase.Pending, Status.Phase);
        Assert.Null(Status.JobName);
        Assert.Equal(TimeSpan.FromSeconds(60), result.RequeueAfter);
    }

    [Fact]
    public async Task A_plan_too_large_for_a_configmap_fails_dispatch_with_a_clear_condition()
    {
        _cluster.Apply(Specs.Object(JobManifestsTests.LongListSpec(5_000)));

        var result = await ReconcileAsync();

        var dispatched = AssertCondition(Conditions.Dispatched, "False", Conditions.Reasons.PlanTooLarge);
        Assert.Matches("the sweep plan is [0-9,]+ bytes, more than a ConfigMap holds \\(1,000,000\\); use a grid", dispatched.Message);
        Assert.Equal(RunPhase.Failed, Status.Phase);
        Assert.Empty(_cluster.Jobs);
        Assert.Empty(_cluster.ConfigMaps);
        Assert.Contains(_cluster.Events, e => e.Type == "Warning" && e.Message == dispatched.Message);
        Assert.Null(result.RequeueAfter);
    }

    [Fact]
    public async Task A_plan_too_large_is_reported_once_and_a_grid_in_its_place_is_dispatched()
    {
        _cluster.Apply(Specs.Object(JobManifestsTests.LongListSpec(5_000)));
        await ReconcileAsync();
        var writes = _cluster.Writes.Count;
        var events = _cluster.Events.Count;

        await ReconcileAsync();
        Assert.Equal((writes, events), (_cluster.Writes.Count, _cluster.Events.Count));

        EditSpec(Sweep);
        await ReconcileAsync();
        Assert.Single(_cluster.Jobs);
        AssertCondition(Conditions.Dispatched, "True", Conditions.Reasons.JobCreated);
        Assert.Equal(RunPhase.Pending, Status.Phase);
    }

    [Fact]
    public async Task A_batchjob_that_is_gone_is_done()
    {
        var result = await ReconcileAsync("team-a/nothing");

        Assert.Null(result.RequeueAfter);
        Assert.Empty(_cluster.Writes);
    }

    private async Task<ReconcileResult> ReconcileAsync(string key = Key)
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        var reconciler = new BatchJobReconciler(_cluster, DispatchSettings.Default, _time, NullLoggerFactory.Instance);
        return await _cluster.ReconcileAsync(reconciler, key);
    }

    /// <summary>Replaces the spec as kubectl apply does: a new generation.</summary>
    private void EditSpec(string overrides) =>
        _cluster.Update(Key, b => (b.Spec, b.Metadata.Generation) = (JsonSerializer.SerializeToElement(Specs.Spec(overrides)), b.Metadata.Generation + 1));

    private Condition AssertCondition(string type, string status, string reason)
    {
        var condition = Status.Find(type);
        Assert.True(condition is not null, $"no condition {type} in {string.Join(", ", Status.Conditions.Select(c => c.Type))}");
        Assert.Equal((type, status, reason), (condition.Type, condition.Status, condition.Reason));
        return condition;
    }

    private static V1Job ForeignJob()
    {
        var job = JobManifests.IndexedJob(Specs.Job(), "someone-else", ClusterCapabilities.Current, DispatchSettings.Default);
        job.Metadata.OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = "other", Uid = "someone-else", Controller = true }];
        return job;
    }

    private static V1Pod Pod(int index, string phase) => new()
    {
        Metadata = new V1ObjectMeta
        {
            NamespaceProperty = Specs.Namespace,
            Labels = new Dictionary<string, string> { ["batchrunner.io/batchjob"] = Specs.Name },
            Annotations = new Dictionary<string, string> { ["batch.kubernetes.io/job-completion-index"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        },
        Status = new V1PodStatus { Phase = phase },
    };
}
