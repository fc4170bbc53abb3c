using BatchRunner.Core.Runs;
using BatchRunner.Kubernetes.Status;
using k8s.Models;

namespace BatchRunner.Kubernetes.Tests;

public sealed class StatusDerivationTests
{
    private static readonly DateTime Started = new(2026, 3, 1, 10, 0, 0, DateTimeKind.Utc);
    private static readonly DateTime Finished = new(2026, 3, 1, 10, 30, 0, DateTimeKind.Utc);

    internal static V1Job JobWith(V1JobStatus? status) => new() { Metadata = new V1ObjectMeta { Name = Specs.Name }, Status = status };

    internal static V1JobCondition Condition(string type, string reason = "", string message = "") =>
        new() { Type = type, Status = "True", Reason = reason, Message = message, LastTransitionTime = Finished };

    [Fact]
    public void Without_a_job_the_batchjob_is_pending_with_nothing_counted()
    {
        var status = StatusDerivation.FromJob(new BatchJobStatus(), null, 10, null);

        Assert.Equal((RunPhase.Pending, 10, 0, 0, 0), (status.Phase, status.Total, status.Succeeded, status.Failed, status.Active));
        Assert.Null(status.FailedIndexes);
    }

    [Fact]
    public void A_job_without_status_yet_is_pending()
    {
        var status = StatusDerivation.FromJob(new BatchJobStatus(), JobWith(null), 10, null);

        Assert.Equal(RunPhase.Pending, status.Phase);
    }

    [Fact]
    public void A_job_with_active_pods_is_running_with_its_counts()
    {
        var status = StatusDerivation.FromJob(new BatchJobStatus(), JobWith(new V1JobStatus { Active = 3, Succeeded = 2, StartTime = Started }), 10, null);

        Assert.Equal((RunPhase.Running, 10, 2, 0, 3), (status.Phase, status.Total, status.Succeeded, status.Failed, status.Active));
        Assert.Equal(Specs.Name, status.JobName);
        Assert.Equal(new DateTimeOffset(Started), status.StartTime);
        Assert.Null(status.CompletionTime);
    }

    [Fact]
    public void A_complete_job_succeeded_at_its_completion_time()
    {
        var job = JobWith(new V1JobStatus { Succeeded = 10, CompletionTime = Finished, Conditions = [Condition("Complete")] });

        var status = StatusDerivation.FromJob(new BatchJobStatus(), job, 10, null);

        Assert.Equal((RunPhase.Succeeded, 10, 0), (status.Phase, status.Succeeded, status.Active));
        Assert.Equal(new DateTimeOffset(Finished), status.CompletionTime);
        Assert.True(status.IsTerminal);
    }

    [Fact]
    public void A_failed_job_failed_and_says_why_in_its_own_words()
    {
        var job = JobWith(new V1JobStatus { Succeeded = 8, Failed = 2, Conditions = [Condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")] });

        var status = StatusDerivation.FromJob(new BatchJobStatus(), job, 10, null);

        Assert.Equal(RunPhase.Failed, status.Phase);
        Assert.Equal(new DateTimeOffset(Finished), status.CompletionTime);
        Assert.Equal(("BackoffLimitExceeded", "Job has reached the specified backoff limit"), StatusDerivation.FailureOf(job));
    }

    [Fact]
    public void A_job_that_did_not_fail_has_no_failure()
    {
        Assert.Null(StatusDerivation.FailureOf(JobWith(new V1JobStatus { Active = 1 })));
        Assert.Null(StatusDerivation.FailureOf(null));
    }

    [Fact]
    public void Failed_indexes_reported_by_the_job_are_counted_from_their_ranges()
    {
        var job = JobWith(new V1JobStatus { Active = 1, Failed = 9, FailedIndexes = "1,3-5" });

        var status = StatusDerivation.FromJob(new BatchJobStatus(), job, 10, [7]);

        Assert.Equal(4, status.Failed);
        Assert.Equal("1,3-5", status.FailedIndexes);
    }

    [Fact]
    public void Failed_indexes_found_from_pods_are_used_when_the_job_reports_none()
    {
        var job = JobWith(new V1JobStatus { Active = 1, Failed = 5 });

        var status = StatusDerivation.FromJob(new BatchJobStatus(), job, 10, [6, 2, 3]);

        Assert.Equal(3, status.Failed);
        Assert.Equal("2-3,6", status.FailedIndexes);
    }

    [Fact]
    public void Without_failed_indexes_from_anywhere_failed_pods_are_counted()
    {
        var status = StatusDerivation.FromJob(new BatchJobStatus(), JobWith(new V1JobStatus { Active = 1, Failed = 2 }), 10, null);

        Assert.Equal(2, status.Failed);
        Assert.Null(status.FailedIndexes);
    }

    [Theory]
    [InlineData(RunPhase.Succeeded)]
    [InlineData(RunPhase.Failed)]
    [InlineData(RunPhase.Cancelled)]
    public void A_finished_batchjob_keeps_its_outcome_after_its_job_is_gone(RunPhase phase)
    {
        var previous = new BatchJobStatus { Phase = phase, Total = 10, Succeeded = 7, Failed = 3, Active = 2, FailedIndexes = "0-2", CompletionTime = new DateTimeOffset(Finished) };

        var status = StatusDerivation.FromJob(previous, null, 10, null);

        Assert.Equal(previous with { Active = 0 }, status);
    }

    [Fact]
    public void A_cancelled_batchjob_stays_cancelled_while_its_job_is_still_there()
    {
        var previous = new BatchJobStatus { Phase = RunPhase.Cancelled, Total = 10 };

        var status = StatusDerivation.FromJob(previous, JobWith(new V1JobStatus { Active = 4 }), 10, null);

        Assert.Equal(RunPhase.Cancelled, status.Phase);
    }

    [Theory]
    [InlineData("0-2,5,7-9", new[] { 0, 1, 2, 5, 7, 8, 9 })]
    [InlineData("4", new[] { 4 })]
    [InlineData("", new int[0])]
    [InlineData("0,2,4", new[] { 0, 2, 4 })]
    public void Index_ranges_parse_and_format_back_to_the_same_text(string ranges, int[] indexes)
    {
        Assert.Equal(indexes, IndexRanges.Parse(ranges));
        Assert.Equal(ranges, IndexRanges.Format(indexes));
        Assert.Equal(indexes.Length, IndexRanges.Count(ranges));
    }

    [Fact]
    public void Index_ranges_are_formatted_sorted_and_without_duplicates()
    {
        Assert.Equal("1-3,9", IndexRanges.Format([9, 3, 1, 2, 3, 1]));
        Assert.Empty(IndexRanges.Parse(null));
    }

    [Fact]
    public void Setting_a_condition_to_the_same_status_keeps_its_transition_time()
    {
        var before = DateTimeOffset.Parse("2026-03-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var conditions = Conditions.With([], Conditions.Valid, true, "SpecValid", "ok", 1, before);

        var same = Conditions.With(conditions, Conditions.Valid, true, "SpecValid", "still ok", 2, before.AddMinutes(5));

        var condition = Assert.Single(same);
        Assert.Equal(before, condition.LastTransitionTime);
        Assert.Equal(("True", "still ok", 2L), (condition.Status, condition.Message, condition.ObservedGeneration));
    }

    [Fact]
    public void Changing_a_condition_status_moves_its_transition_time_and_leaves_the_others()
    {
        var before = DateTimeOffset.Parse("2026-03-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var conditions = Conditions.With([], Conditions.Valid, true, "SpecValid", "ok", 1, before);
        conditions = Conditions.With(conditions, Conditions.Dispatched, true, "JobCreated", "created", 1, before);

        var changed = Conditions.With(conditions, Conditions.Valid, false, "InvalidSpec", "bad", 2, before.AddMinutes(5));

        Assert.Equal([Conditions.Valid, Conditions.Dispatched], changed.Select(c => c.Type));
        Assert.Equal(("False", "InvalidSpec", before.AddMinutes(5)), (changed[0].Status, changed[0].Reason, changed[0].LastTransitionTime));
        Assert.Equal(conditions[1], changed[1]);
    }
}
