namespace BatchRunner.Dashboard.Tests;

public sealed class BatchJobListTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private static BatchJobView Job(string ns, string name, string phase, int minute, string? queue = null, string? waitReason = null) =>
        new() { Namespace = ns, Name = name, Phase = phase, Created = T0.AddMinutes(minute), Queue = queue, WaitReason = waitReason };

    private static readonly DashboardSnapshot Snapshot = new(1,
    [
        Job("team-a", "sweep-1", "Running", 1, "research"),
        Job("team-a", "sweep-2", "Pending", 2, "research", "QuotaExhausted"),
        Job("team-b", "sweep-3", "Succeeded", 3, "research", "QuotaExhausted"),
        Job("team-b", "calib", "Failed", 4),
        Job("team-b", "other", "Pending", 5),
    ], []);

    public static TheoryData<BatchJobFilter, string[]> Filters => new()
    {
        { new BatchJobFilter(), ["team-b/other", "team-b/calib", "team-b/sweep-3", "team-a/sweep-2", "team-a/sweep-1"] },
        { new BatchJobFilter(Namespace: "team-a"), ["team-a/sweep-2", "team-a/sweep-1"] },
        { new BatchJobFilter(Phase: "Pending"), ["team-b/other", "team-a/sweep-2"] },
        // A finished BatchJob whose status still names a reason does not wait.
        { new BatchJobFilter(Phase: BatchJobFilter.Waiting), ["team-a/sweep-2"] },
        { new BatchJobFilter(Queue: "research", Phase: "Succeeded"), ["team-b/sweep-3"] },
        { new BatchJobFilter(Text: "SWEEP"), ["team-b/sweep-3", "team-a/sweep-2", "team-a/sweep-1"] },
        { new BatchJobFilter(Text: "b/c"), ["team-b/calib"] },
        { new BatchJobFilter(Namespace: "nobody"), [] },
    };

    [Theory]
    [MemberData(nameof(Filters))]
    public void The_list_shows_what_the_filter_matches_newest_first(BatchJobFilter filter, string[] expected)
    {
        var page = BatchJobList.Page(Snapshot, filter, 50);
        Assert.Equal(expected, page.Rows.Select(b => $"{b.Namespace}/{b.Name}"));
        Assert.Equal(expected.Length, page.Matching);
    }

    [Fact]
    public void Counts_by_phase_follow_every_field_but_the_phase()
    {
        var counts = BatchJobList.Page(Snapshot, new BatchJobFilter(Namespace: "team-b", Phase: "Failed"), 50).Counts;
        Assert.Equal((1, 1, 1, 0, 0, 0), (counts["Succeeded"], counts["Failed"], counts["Pending"], counts["Running"], counts[BatchJobFilter.Waiting], counts["Cancelled"]));
    }

    [Theory]
    [InlineData(1, 1, 10)]
    [InlineData(3, 3, 3)]
    [InlineData(4, 3, 3)] // past the last page: the last
    [InlineData(0, 1, 10)]
    [InlineData(-5, 1, 10)]
    public void Pages_hold_the_page_size_and_a_page_out_of_range_is_the_nearest(int asked, int shown, int rows)
    {
        var many = new DashboardSnapshot(1, Enumerable.Range(0, 23).Select(i => Job("ns", $"b{i:00}", "Running", i)), []);
        var page = BatchJobList.Page(many, new BatchJobFilter(Page: asked), 10);
        Assert.Equal((shown, 3, 23, rows), (page.Page, page.Pages, page.Matching, page.Rows.Count));
        Assert.Equal($"b{22 - (shown - 1) * 10:00}", page.Rows[0].Name);
    }

    [Fact]
    public void An_empty_snapshot_has_one_empty_page()
    {
        var page = BatchJobList.Page(DashboardSnapshot.Empty, new BatchJobFilter(), 50);
        Assert.Equal((1, 1, 0), (page.Page, page.Pages, page.Rows.Count));
    }

    [Fact]
    public void A_queue_lists_its_unfinished_batchjobs_by_position_then_name()
    {
        var snapshot = new DashboardSnapshot(1,
        [
            Job("a", "third", "Pending", 1, "q") with { Position = 3 },
            Job("a", "first", "Pending", 2, "q") with { Position = 1 },
            Job("a", "running", "Running", 3, "q"),
            Job("a", "done", "Succeeded", 4, "q") with { Position = 2 },
            Job("a", "elsewhere", "Pending", 5, "other") with { Position = 1 },
        ], []);
        Assert.Equal(["first", "third", "running"], snapshot.InQueue("q").Select(b => b.Name));
    }

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(-30, "0s")]
    [InlineData(119, "119s")]
    [InlineData(120, "2m")]
    [InlineData(7199, "119m")]
    [InlineData(7200, "2h")]
    [InlineData(172800, "2d")]
    public void Ages_read_as_kubectls(int seconds, string expected) =>
        Assert.Equal(expected, DashboardPages.Ago(T0, T0.AddSeconds(seconds)));
}
