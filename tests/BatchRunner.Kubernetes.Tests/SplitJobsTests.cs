using BatchRunner.Core.Runs;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using static BatchRunner.Kubernetes.Tests.StatusDerivationTests;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>
/// A run larger than one Job holds, split into several Jobs (here at 3 completions each, as a million indexes are at
/// 100,000): how they are named and cut, how the parallelism spans them, what the BatchJob's status says of them, and
/// what a refused part leaves.
/// </summary>
public sealed class SplitJobsTests
{
    private const string Key = Specs.Namespace + "/" + Specs.Name;
    private const string SevenIndexes = """{"parallelism": 2, "completions": 7}""";
    private static readonly DispatchSettings ThreePerJob = DispatchSettings.Default with { MaxCompletionsPerJob = 3 };

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeCluster _cluster = new();

    private BatchJobStatus Status => _cluster.StatusOf(Key);

    [Theory]
    [InlineData(1, 100_000, 1)]
    [InlineData(100_000, 100_000, 1)]
    [InlineData(100_001, 100_000, 2)]
    [InlineData(1_000_000, 100_000, 10)]
    [InlineData(7, 3, 3)]
    public void A_run_needs_one_job_per_hundred_thousand_indexes(int total, int perJob, int jobs) =>
        Assert.Equal(jobs, JobParts.CountOf(total, perJob));

    [Fact]
    public void Parts_cut_the_run_in_order_and_name_the_first_after_the_batchjob()
    {
        var parts = JobParts.Of("sweep", 7, null, 3);

        Assert.Equal(
            [("sweep", 0, 3, "0-2"), ("sweep-part-1", 3, 3, "3-5"), ("sweep-part-2", 6, 1, "6")],
            parts.Select(p => (p.Name, p.Start, p.Count, p.Ranges!)));
        Assert.Null(Assert.Single(JobParts.Of("sweep", 7, null, 100_000)).Ranges);
    }

    [Fact]
    public void Parts_of_a_subset_carry_the_subset_s_own_indexes()
    {
        var parts = JobParts.Of("sweep", 5, [10, 11, 12, 20, 30], 2);

        Assert.Equal(["10-11", "12,20", "30"], parts.Select(p => p.Ranges));
    }

    public static TheoryData<int, int[], int[], int[]> ShareCases => new()
    {
        // parallelism, remaining per part, floors (running pods kept), shares
        { 2, [3, 3, 1], [0, 0, 0], [2, 0, 0] },
        { 5, [3, 3, 1], [0, 0, 0], [3, 2, 0] },
        { 2, [1, 3, 1], [0, 0, 0], [1, 1, 0] },
        { 2, [0, 0, 1], [0, 0, 0], [0, 0, 2] },
        { 10, [3, 3, 1], [0, 0, 0], [3, 3, 4] },
        { 2, [3, 3, 1], [1, 2, 0], [1, 2, 0] },
        { 0, [3, 3, 1], [0, 0, 0], [0, 0, 0] },
        { 4, [100_000], [0], [4] },
        { 4, [1], [0], [4] },
    };

    [Theory]
    [MemberData(nameof(ShareCases))]
    public void The_parallelism_is_shared_in_part_order_keeping_running_pods(int parallelism, int[] remaining, int[] floors, int[] shares) =>
        Assert.Equal(shares, JobParts.Shares(parallelism, remaining, floors));

    [Theory]
    [InlineData(5, 2, 2, false, false)] // draining at its tail: more than it has left is no change
    [InlineData(2, 1, 1, false, false)]
    [InlineData(2, 0, 0, false, false)]
    [InlineData(0, 2, 3, false, true)] // its turn came
    [InlineData(2, 1, 3, false, true)] // a lower allowance
    [InlineData(5, 2, 2, true, true)] // the last part (or the only Job) takes the exact figure
    [InlineData(2, 2, 1, true, false)]
    public void A_part_is_patched_only_when_what_it_may_run_changes(int current, int share, int remaining, bool last, bool patched) =>
        Assert.Equal(patched, JobParts.NeedsPatch(current, share, remaining, last));

    [Fact]
    public async Task A_run_larger_than_a_job_is_dispatched_as_several_jobs_at_once_with_one_event()
    {
        _cluster.Apply(Specs.Object(SevenIndexes));

        await ReconcileAsync();
        await ReconcileAsync();

        Assert.Equal(["create-job sweep", "create-job sweep-part-1", "create-job sweep-part-2"], _cluster.Writes.Where(w => w.StartsWith("create", StringComparison.Ordinal)));
        Assert.Equal(
            [("sweep", 3, 2, "0-2"), ("sweep-part-1", 3, 0, "3-5"), ("sweep-part-2", 1, 0, "6")],
            _cluster.Jobs.OrderBy(j => j.Metadata.Name, StringComparer.Ordinal).Select(j => (j.Metadata.Name, j.Spec.Completions ?? 0, j.Spec.Parallelism ?? 0, IndexesOf(j))));
        Assert.All(_cluster.Jobs, j => Assert.Equal(RunIdentity.For(Specs.Job(SevenIndexes)), j.Metadata.Labels[BatchJobResource.RunLabel]));
        var dispatched = Assert.Single(_cluster.Events, e => e.Reason == "Dispatched");
        Assert.Contains("3 of 3 Jobs (sweep to sweep-part-2) for 7 indexes", dispatched.Message, StringComparison.Ordinal);
        Assert.Equal((RunPhase.Pending, "sweep", 7), (Status.Phase, Status.JobName, Status.Total));
    }

    [Fact]
    public async Task As_the_first_job_drains_the_next_one_gets_its_share_and_the_first_is_not_patched_down()
    {
        _cluster.Apply(Specs.Object(SevenIndexes));
        await ReconcileAsync();

        // Two of its three indexes still to finish: it keeps both slots.
        _cluster.SetJobStatus("sweep", new V1JobStatus { StartTime = Now, Active = 2, Succeeded = 1 });
        await ReconcileAsync();
        Assert.Empty(_cluster.JobPatches);

        _cluster.SetJobStatus("sweep", new V1JobStatus { StartTime = Now, Active = 1, Succeeded = 2 });
        await ReconcileAsync();
        Assert.Equal([("sweep-part-1", 1)], _cluster.JobPatches.Select(p => (p.Name, p.Parallelism)));

        _cluster.SetJobStatus("sweep-part-1", new V1JobStatus { StartTime = Now, Active = 1 });
        await ReconcileAsync();
        Assert.Equal([("sweep-part-1", 1)], _cluster.JobPatches.Select(p => (p.Name, p.Parallelism)));
        Assert.Equal((RunPhase.Running, 2, 2), (Status.Phase, Status.Succeeded, Status.Active));

        _cluster.SetJobStatus("sweep", Finished(succeeded: 3));
        await ReconcileAsync();
        Assert.Equal(("sweep-part-1", 2), (_cluster.JobPatches[^1].Name, _cluster.JobPatches[^1].Parallelism));
        Assert.DoesNotContain(_cluster.JobPatches, p => p.Name == "sweep");
    }

    [Fact]
    public async Task The_status_adds_the_parts_up_and_names_failed_indexes_in_the_run_s_numbering()
    {
        _cluster.Apply(Specs.Object(SevenIndexes));
        await ReconcileAsync();

        _cluster.SetJobStatus("sweep", Finished(succeeded: 3));
        _cluster.SetJobStatus("sweep-part-1", Finished(succeeded: 2, failedIndexes: "1"));
        _cluster.SetJobStatus("sweep-part-2", new V1JobStatus { StartTime = Now, Active = 1 });
        await ReconcileAsync();
        Assert.Equal((RunPhase.Running, 5, 1, 1, "4"), (Status.Phase, Status.Succeeded, Status.Failed, Status.Active, Status.FailedIndexes));

        _cluster.SetJobStatus("sweep-part-2", Finished(succeeded: 1));
        await ReconcileAsync();

        Assert.Equal((RunPhase.Failed, 6, 1, "4"), (Status.Phase, Status.Succeeded, Status.Failed, Status.FailedIndexes));
        var failed = Status.Find(Conditions.Failed)!;
        Assert.Contains("Job sweep-part-1", failed.Message, StringComparison.Ordinal);
        Assert.Contains("failed indexes: 4", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_part_succeeded_is_the_run_succeeded()
    {
        _cluster.Apply(Specs.Object(SevenIndexes));
        await ReconcileAsync();

        _cluster.SetJobStatus("sweep", Finished(succeeded: 3));
        _cluster.SetJobStatus("sweep-part-1", Finished(succeeded: 3));
        await ReconcileAsync();
        Assert.Equal(RunPhase.Running, Status.Phase);

        _cluster.SetJobStatus("sweep-part-2", Finished(succeeded: 1));
        await ReconcileAsync();

        Assert.Equal((RunPhase.Succeeded, 7, 0), (Status.Phase, Status.Succeeded, Status.Failed));
    }

    [Fact]
    public async Task Cancelling_a_split_run_deletes_every_part_still_going()
    {
        _cluster.Apply(Specs.Object(SevenIndexes));
        await ReconcileAsync();
        _cluster.SetJobStatus("sweep", Finished(succeeded: 3));
        _cluster.SetJobStatus("sweep-part-1", new V1JobStatus { StartTime = Now, Active = 2 });

        _cluster.Update(Key, b => b.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.CancelAnnotation] = "true" });
        await ReconcileAsync();

        Assert.Equal(["delete-job sweep-part-1", "delete-job sweep-part-2"], _cluster.Writes.Where(w => w.StartsWith("delete", StringComparison.Ordinal)));
        Assert.Equal((RunPhase.Cancelled, 3), (Status.Phase, Status.Succeeded));
    }

    [Fact]
    public async Task A_part_the_api_server_refuses_is_said_on_the_status_and_created_once_it_has_room_without_duplicates()
    {
        _cluster.Apply(Specs.Object(SevenIndexes));
        _cluster.RefuseJob = job => job.Metadata.Name == "sweep-part-2" ? "exceeded quota: jobs, requested: count/jobs.batch=1, used: count/jobs.batch=2, limited: count/jobs.batch=2" : null;

        await ReconcileAsync();
        await ReconcileAsync();

        var dispatched = Status.Find(Conditions.Dispatched)!;
        Assert.Equal(("False", Conditions.Reasons.JobRefused), (dispatched.Status, dispatched.Reason));
        Assert.Contains("Job sweep-part-2 (part 3 of 3): exceeded quota", dispatched.Message, StringComparison.Ordinal);
        Assert.Equal(["sweep", "sweep-part-1"], _cluster.Jobs.Select(j => j.Metadata.Name).Order(StringComparer.Ordinal));

        _cluster.RefuseJob = null;
        await ReconcileAsync();

        Assert.Equal(3, _cluster.Jobs.Count);
        Assert.Equal(3, _cluster.Writes.Count(w => w.StartsWith("create-job", StringComparison.Ordinal)));
        Assert.Equal(("True", Conditions.Reasons.JobCreated), (Status.Find(Conditions.Dispatched)!.Status, Status.Find(Conditions.Dispatched)!.Reason));
    }

    [Fact]
    public async Task A_run_whose_first_job_is_refused_waits_with_the_reason_and_nothing_created()
    {
        _cluster.Apply(Specs.Object(SevenIndexes));
        _cluster.RefuseJob = _ => "admission webhook \"policy\" denied the request";

        var result = await ReconcileAsync();

        Assert.Empty(_cluster.Jobs);
        Assert.Equal(RunPhase.Pending, Status.Phase);
        var dispatched = Status.Find(Conditions.Dispatched)!;
        Assert.Equal(("False", Conditions.Reasons.JobRefused), (dispatched.Status, dispatched.Reason));
        Assert.Contains("denied the request", dispatched.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(30), result.RequeueAfter);
    }

    [Fact]
    public async Task A_million_index_grid_is_ten_jobs_of_a_hundred_thousand_each_carrying_a_small_plan()
    {
        const string million = """{"parallelism": 500, "sweep": {"grid": {"a": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "b": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "c": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, "repeats": 1000}}""";
        _cluster.Apply(Specs.Object(million));

        await ReconcileAsync(DispatchSettings.Default);

        var jobs = _cluster.Jobs.OrderBy(j => j.Spec.Completions).ThenBy(j => j.Metadata.Name.Length).ThenBy(j => j.Metadata.Name, StringComparer.Ordinal).ToList();
        Assert.Equal(10, jobs.Count);
        Assert.All(jobs, j => Assert.Equal(100_000, j.Spec.Completions));
        Assert.Equal(["0-99999", "100000-199999", "900000-999999"], new[] { jobs[0], jobs[1], jobs[9] }.Select(IndexesOf));
        Assert.Equal([500, 0, 0], new[] { jobs[0], jobs[1], jobs[9] }.Select(j => j.Spec.Parallelism ?? 0));
        Assert.All(jobs, j => Assert.True(k8s.KubernetesJson.Serialize(j).Length < 64 * 1024, $"Job {j.Metadata.Name} is {k8s.KubernetesJson.Serialize(j).Length} bytes"));
        Assert.Empty(_cluster.ConfigMaps);
    }

    [Fact]
    public async Task The_status_of_a_run_with_half_a_million_failed_indexes_stays_small_and_counts_them_all()
    {
        const string million = """{"parallelism": 500, "completions": 1000000}""";
        _cluster.Apply(Specs.Object(million));
        await ReconcileAsync(DispatchSettings.Default);

        var everyOther = string.Join(',', Enumerable.Range(0, 50_000).Select(i => (2 * i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        foreach (var job in _cluster.Jobs.ToList())
        {
            _cluster.SetJobStatus(job.Metadata.Name, Finished(succeeded: 50_000, failedIndexes: everyOther));
        }

        await ReconcileAsync(DispatchSettings.Default);

        Assert.Equal((RunPhase.Failed, 500_000, 500_000, true), (Status.Phase, Status.Succeeded, Status.Failed, Status.FailedIndexesTruncated));
        Assert.True(Status.FailedIndexes!.Length <= BatchJobStatus.MaxFailedIndexesText);
        Assert.StartsWith("1,3,5,", Status.FailedIndexes, StringComparison.Ordinal);
        var size = System.Text.Json.JsonSerializer.Serialize(Status, BatchJobStatus.TypeInfo).Length;
        Assert.True(size < 40 * 1024, $"the status is {size} bytes");
        Assert.Contains("(500000 in all)", Status.Find(Conditions.Failed)!.Message, StringComparison.Ordinal);

        // A rerun reckons what stays of the outcome from the list: with part of it, it would lose failures.
        _cluster.Update(Key, b => b.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.RerunAnnotation] = "failed" });
        await ReconcileAsync(DispatchSettings.Default);
        var rerun = Status.Find(Conditions.Rerun)!;
        Assert.Equal(("False", Conditions.Reasons.RerunRefused), (rerun.Status, rerun.Reason));
        Assert.Contains("500000 failed indexes, more than its status lists", rerun.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_rerun_of_more_indexes_than_a_job_holds_is_refused_naming_the_limit()
    {
        _cluster.Apply(Specs.Object(SevenIndexes));
        await ReconcileAsync();
        foreach (var job in _cluster.Jobs.ToList())
        {
            _cluster.SetJobStatus(job.Metadata.Name, Finished(succeeded: job.Spec.Completions ?? 0));
        }

        await ReconcileAsync();
        _cluster.Update(Key, b => b.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.RerunAnnotation] = "0-3" });
        await ReconcileAsync();
        await ReconcileAsync();

        Assert.DoesNotContain(_cluster.Jobs, j => j.Metadata.Name.Contains("rerun", StringComparison.Ordinal));
        Assert.Contains("the rerun chooses 4 indexes, more than one Job runs (3)", Status.Find(Conditions.Dispatched)!.Message, StringComparison.Ordinal);
    }

    private static string? IndexesOf(V1Job job) =>
        job.Spec.Template.Spec.Containers[0].Env.FirstOrDefault(e => e.Name == WorkloadEnvironment.RerunIndexes)?.Value;

    private DateTime Now => _time.GetUtcNow().UtcDateTime;

    private V1JobStatus Finished(int succeeded, string? failedIndexes = null) => new()
    {
        StartTime = Now,
        CompletionTime = failedIndexes is null ? Now : null,
        Succeeded = succeeded,
        Failed = failedIndexes is null ? 0 : IndexRanges.Count(failedIndexes),
        FailedIndexes = failedIndexes,
        Conditions = [Condition(failedIndexes is null ? "Complete" : "Failed", failedIndexes is null ? "" : "FailedIndexes", failedIndexes is null ? "" : "Job has failed indexes")],
    };

    private async Task<ReconcileResult> ReconcileAsync(DispatchSettings? settings = null)
    {
        _time.Advance(TimeSpan.FromSeconds(10));
        var reconciler = new BatchJobReconciler(_cluster, settings ?? ThreePerJob, _time, NullLoggerFactory.Instance);
        return await _cluster.ReconcileAsync(reconciler, Key);
    }
}
