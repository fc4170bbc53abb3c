using System.Text.Json;
using BatchRunner.Core.Costs;
using BatchRunner.Reports.Tests.Support;

namespace BatchRunner.Reports.Tests;

public sealed class SweepReportBuilderTests
{
    [Fact]
    public void AnOutputIsAveragedWithinEachIndexThenOverTheIndexesAtEachValueWithItsInterval()
    {
        using var store = new SweepStore();
        store.Attempt(0, new { x = 1, y = "a" }, rows: [new { v = 1.0 }, new { v = 3.0 }]);
        store.Attempt(1, new { x = 1, y = "b" }, rows: [new { v = 4.0 }]);
        store.Attempt(2, new { x = 1, y = "a" }, rows: [new { v = 6.0 }]);
        foreach (var i in new[] { 3, 4, 5 })
        {
            store.Attempt(i, new { x = 2, y = i % 2 == 0 ? "a" : "b" }, rows: [new { v = 10.0 }]);
        }

        var report = store.Report()!;

        var effect = Assert.Single(report.Effects, e => e.Output == "v" && e.Parameter == "x");
        Assert.False(effect.Binned);
        Assert.Equal(["1", "2"], effect.Points.Select(p => p.X));
        var (atOne, atTwo) = (effect.Points[0], effect.Points[1]);
        Assert.Equal((3L, 4.0), (atOne.N, atOne.Mean));
        var half = 1.96 * 2 / Math.Sqrt(3);
        Assert.Equal(4 - half, atOne.Low!.Value, 9);
        Assert.Equal(4 + half, atOne.High!.Value, 9);
        Assert.Equal((3L, 10.0, 10.0, 10.0), (atTwo.N, atTwo.Mean, atTwo.Low, atTwo.High));
        Assert.Equal(["x", "y"], report.Parameters.Select(p => p.Name));
        Assert.True(report.Parameters[0].Numeric);
        Assert.False(report.Parameters[1].Numeric);
        Assert.Equal(7, report.Summary.ResultRows);
    }

    [Fact]
    public void AnIndexOfOneRepeatHasNoInterval()
    {
        using var store = new SweepStore();
        store.Attempt(0, new { x = 1 }, rows: [new { v = 2.0 }]);
        store.Attempt(1, new { x = 2 }, rows: [new { v = 5.0 }]);

        var points = Assert.Single(store.Report()!.Effects).Points;

        Assert.All(points, p => Assert.Equal((1L, (double?)null, (double?)null), (p.N, p.Low, p.High)));
    }

    [Fact]
    public void AnIndexFailsWhenNoAttemptSucceededAndTheTableNamesItsLastAttempt()
    {
        using var store = new SweepStore();
        store.Attempt(0, new { x = 1 }, status: "failed", reason: "boom", attempt: 1);
        store.Attempt(0, new { x = 1 }, attempt: 2, startSeconds: 2, rows: [new { v = 1 }]);
        store.Attempt(1, new { x = 2 }, status: "failed", reason: "boom", attempt: 1);
        store.Attempt(1, new { x = 2 }, status: "timed_out", reason: "past its timeout", exitCode: 137, attempt: 2, startSeconds: 2);

        var report = store.Report()!;

        Assert.Equal((2L, 1L, 1L, 4L, 2L), (report.Summary.Indexes, report.Summary.Succeeded, report.Summary.Failed, report.Summary.Attempts, report.Summary.Retries));
        Assert.Equal(1, report.Failed.Total);
        var failed = Assert.Single(report.Failed.Rows);
        Assert.Equal((1L, "x=2", 2L, "timed_out", (long?)137, "past its timeout"), (failed.Index, failed.Parameters, failed.Attempts, failed.Status, failed.ExitCode, failed.Reason));
        Assert.EndsWith("/index=1/attempt=2/logs/", failed.Logs, StringComparison.Ordinal);
        Assert.StartsWith("file://", failed.Logs, StringComparison.Ordinal);
        Assert.Equal("batchrunner logs sweep --run r1 --index 1 --attempt 2", failed.Command);
    }

    [Fact]
    public void FailuresAreCountedAtEachValueOfEachParameter()
    {
        using var store = new SweepStore();
        for (var i = 0; i < 8; i++)
        {
            var x = i % 2 + 1;
            store.Attempt(i, new { x, seedling = i / 2 }, status: x == 2 && i < 6 ? "failed" : "succeeded");
        }

        var rate = Assert.Single(store.Report()!.FailureRates, f => f.Parameter == "x");

        Assert.Equal([new FailurePoint("1", 4, 0), new FailurePoint("2", 4, 3)], rate.Points);
    }

    [Fact]
    public void AParameterWithMoreValuesThanAFigureShowsIsBinned()
    {
        using var store = new SweepStore();
        for (var i = 0; i < 200; i++)
        {
            store.Attempt(i, new { x = i * 0.5 }, rows: [new { v = i }]);
        }

        var report = store.Report()!;

        var effect = Assert.Single(report.Effects);
        Assert.True(effect.Binned);
        Assert.Equal(ReportLimits.ParameterValues, effect.Points.Count);
        Assert.Equal(200, effect.Points.Sum(p => p.N));
        Assert.Equal(ReportLimits.ParameterValues, Assert.Single(report.FailureRates).Points.Count);
    }

    [Fact]
    public void TwoParametersMakeAHeatmapOfTheOutputsMeans()
    {
        using var store = new SweepStore();
        var index = 0;
        foreach (var x in new[] { 1, 2, 3 })
        {
            foreach (var y in new[] { "a", "b" })
            {
                store.Attempt(index++, new { x, y }, rows: [new { v = x * 10 + (y == "b" ? 1 : 0) }]);
                store.Attempt(index++, new { x, y }, rows: [new { v = x * 10 + (y == "b" ? 3 : 0) }]);
            }
        }

        var heatmap = Assert.Single(store.Report()!.Heatmaps);

        Assert.Equal(("v", "x", "y"), (heatmap.Output, heatmap.X, heatmap.Y));
        Assert.Equal(["1", "2", "3"], heatmap.Xs);
        Assert.Equal(["a", "b"], heatmap.Ys);
        Assert.Equal(6, heatmap.Cells.Count);
        Assert.Equal(32.0, heatmap.Cells.Single(c => heatmap.Xs[c.X] == "3" && heatmap.Ys[c.Y] == "b").Mean);
        Assert.All(heatmap.Cells, c => Assert.Equal(2, c.N));
    }

    [Theory]
    [InlineData("a\"b")]
    [InlineData("<img src=x onerror=alert(1)>")]
    [InlineData("ünïcödé ✓")]
    public void AnyOutputNameIsPlottedUnderItsOwnName(string name)
    {
        using var store = new SweepStore();
        store.Attempt(0, new { x = 1 }, rows: [new Dictionary<string, double> { [name] = 1 }]);
        store.Attempt(1, new { x = 2 }, rows: [new Dictionary<string, double> { [name] = 3 }]);

        var report = store.Report()!;

        Assert.Equal([name], report.Outputs);
        Assert.Equal([1.0, 3.0], Assert.Single(report.Effects, e => e.Output == name).Points.Select(p => p.Mean));
    }

    [Fact]
    public void TheTimelineCountsAttemptsRunningAtOnceByBackendAndTheRetriesStarted()
    {
        using var store = new SweepStore();
        store.Attempt(0, new { x = 1 }, startSeconds: 0, seconds: 10);
        store.Attempt(1, new { x = 2 }, startSeconds: 0, seconds: 10);
        store.Attempt(2, new { x = 3 }, startSeconds: 5, seconds: 10, status: "failed");
        store.Attempt(2, new { x = 3 }, attempt: 2, startSeconds: 20, seconds: 10, backend: "kubernetes");
        // Reused from an earlier run: its times are that run's and stay off this run's timeline and durations.
        store.Attempt(3, new { x = 4 }, startSeconds: -86_400, seconds: 500, reusedFrom: "sweep/r0/3");

        var report = store.Report()!;

        var timeline = report.Timeline;
        Assert.Equal(SweepStore.Start.ToUnixTimeSeconds(), timeline.Start);
        Assert.Equal(30.0 / ReportLimits.TimelineBuckets, timeline.BucketSeconds, 9);
        var local = Assert.Single(timeline.Running, r => r.Backend == "local");
        Assert.Equal(3, local.Points.Max(p => p.Most));
        Assert.Equal(0, local.Points[^1].Last);
        Assert.Equal(1, Assert.Single(timeline.Running, r => r.Backend == "kubernetes").Points.Max(p => p.Most));
        Assert.Equal(1, Assert.Single(timeline.Retries).Count);
        Assert.Equal(4, report.Durations.Bins.Sum(b => b.Succeeded + b.Failed + b.Other));
        Assert.Equal(1, report.Durations.Bins.Sum(b => b.Failed));
        Assert.Equal(10, report.Durations.Low);
        Assert.Equal((1L, 40.0), (report.Summary.Reused, report.Summary.AttemptSeconds));
        Assert.Equal(30, report.Summary.LastFinished - report.Summary.FirstStarted);
    }

    [Fact]
    public void CostIsTheSumOfEachAttemptsUsageAtItsBackendsPriceByBackendAndByPoint()
    {
        using var store = new SweepStore();
        store.Attempt(0, new { x = 1 }, vcpuSeconds: 2, gibSeconds: 4);
        store.Attempt(1, new { x = 1 }, vcpuSeconds: 3, gibSeconds: 0, seed: 1);
        store.Attempt(2, new { x = 2 }, vcpuSeconds: 7, gibSeconds: 0, backend: "aws-batch", capacity: "spot");
        // One dollar a vCPU-second locally and a cent a GiB-second; spot at a tenth of that.
        var prices = new PriceTable(new Dictionary<string, Price>(StringComparer.Ordinal)
        {
            ["local"] = new(3600, 36), ["aws-batch"] = new(3600, 36), ["aws-batch/spot"] = new(360, 3.6),
        });

        var cost = store.Report(prices)!.Cost;

        Assert.Equal(2 + 0.04 + 3 + 0.7, cost.Total!.Value, 9);
        Assert.Equal(12.0 / 3600, cost.VcpuHours, 12);
        Assert.Equal(["aws-batch/spot", "local"], cost.ByBackend.Select(b => b.Label));
        Assert.Equal(5.04, cost.ByBackend[1].Cost!.Value, 9);
        Assert.Equal(["x=1", "x=2"], cost.ByPoint.Select(p => p.Label));
        Assert.Equal((2L, 5.04), (cost.ByPoint[0].Attempts, Math.Round(cost.ByPoint[0].Cost!.Value, 9)));
        Assert.Equal(2, cost.Points);
    }

    [Fact]
    public void WithoutAPriceForABackendTheTotalIsUnknownAndTheReportSaysWhy()
    {
        using var store = new SweepStore();
        store.Attempt(0, new { x = 1 });
        store.Attempt(1, new { x = 2 }, backend: "aws-batch");

        var report = store.Report()!;

        Assert.Null(report.Cost.Total);
        Assert.NotNull(report.Cost.ByBackend.Single(b => b.Label == "aws-batch").Cost);
        Assert.Contains(report.Notes, n => n.Contains("without a price (local)", StringComparison.Ordinal));
    }

    [Fact]
    public void ARunWithNoAttemptInTheStoreHasNoReport()
    {
        using var store = new SweepStore();
        store.Attempt(0, new { x = 1 });
        using var other = new SweepStore(run: "r2");

        Assert.Null(other.Report());
        Assert.NotNull(store.Report());
    }

    [Fact]
    public void ARunWithoutNumericOutputsOrVaryingParametersStillHasItsSummaryAndTimes()
    {
        using var store = new SweepStore();
        store.Attempt(0, new { x = 1 }, rows: [new { label = "a" }]);
        store.Attempt(1, new { x = 1 }, rows: [new { label = "b" }], seed: 1);

        var report = store.Report()!;

        Assert.Empty(report.Outputs);
        Assert.Empty(report.Parameters);
        Assert.Empty(report.Effects);
        Assert.Equal(2, report.Summary.Succeeded);
        Assert.NotEmpty(report.Durations.Bins);
    }

    [Fact]
    public void TheReportStaysSmallHoweverManyIndexesAndValuesTheSweepHas()
    {
        using var store = new SweepStore();
        for (var i = 0; i < 3000; i++)
        {
            store.Attempt(i, new { x = i, name = $"n{i % 500}" }, status: i % 5 == 0 ? "failed" : "succeeded", startSeconds: i * 0.1,
                rows: Enumerable.Range(0, 3).Select(r => (object)new { a = i + r, b = r * 0.5, c = i % 3 }));
        }

        var report = store.Report()!;
        var json = JsonSerializer.SerializeToUtf8Bytes(report, ReportJsonContext.Default.SweepReport);

        Assert.Equal(3000, report.Summary.Indexes);
        Assert.Equal(600, report.Failed.Total);
        Assert.Equal(ReportLimits.FailedRows, report.Failed.Rows.Count);
        Assert.All(report.Effects, e => Assert.True(e.Points.Count <= ReportLimits.ParameterValues));
        Assert.True(json.Length < 300_000, $"the report's data is {json.Length} bytes");
    }
}
