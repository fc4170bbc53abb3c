using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using Xunit;

namespace BatchRunner.Core.Tests;

public sealed class EtaEstimatorTests
{
    private static readonly TimeSpan[] TenSeconds = [TimeSpan.FromSeconds(10)];
    private static readonly TimeSpan[] Spread = [.. new[] { 4, 6, 8, 10, 12, 14, 16, 18, 20, 40 }.Select(s => TimeSpan.FromSeconds(s))];

    public static TheoryData<TimeSpan[], int, int, int, int, int, double, double, double, double> Cases => new()
    {
        // runtimes, remaining, running, ahead, slots, rate → start p50, start p90, finish p50, finish p90 (seconds)
        { TenSeconds, 10, 0, 0, 10, 10, 1, 1, 11, 11 },       // first in line: the next slot frees within a tenth of a runtime
        { TenSeconds, 10, 0, 19, 10, 5, 20, 20, 40, 40 },     // 19 indexes ahead on 10 slots: two runtimes, then two rounds of 5
        { TenSeconds, 25, 3, 40, 10, 3, 0, 0, 90, 90 },      // already running: it has started; 25 left at 3 at a time
        { Spread, 4, 0, 9, 10, 4, 12, 20, 24, 40 },           // p50 runtime 12 s, p90 20 s (nearest rank)
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Start_and_finish_follow_the_work_ahead_the_slots_and_the_rate(
        TimeSpan[] runtimes, int remaining, int running, int ahead, int slots, int rate, double startP50, double startP90, double finishP50, double finishP90)
    {
        var eta = EtaEstimator.Estimate(runtimes, remaining, running, ahead, slots, rate)!;

        Assert.Equal((startP50, startP90, finishP50, finishP90),
            (Math.Round(eta.StartP50.TotalSeconds, 3), Math.Round(eta.StartP90.TotalSeconds, 3), Math.Round(eta.FinishP50.TotalSeconds, 3), Math.Round(eta.FinishP90.TotalSeconds, 3)));
    }

    [Fact]
    public void Without_an_observed_runtime_there_is_no_estimate() =>
        Assert.Null(EtaEstimator.Estimate([], 10, 0, 0, 10, 10));

    [Fact]
    public void The_work_ahead_of_each_waiting_workload_is_what_those_before_it_in_line_still_want()
    {
        var queue = new QueueDefinition("q", [Backend.Kubernetes], new Dictionary<Backend, Quota> { [Backend.Kubernetes] = new(4, long.MaxValue, long.MaxValue) },
            new Dictionary<string, double>(), 1, TimeSpan.FromHours(1));
        Workload[] workloads =
        [
            new("a/x", "a", "q", Backend.Kubernetes, 0, 1, 10, 100, 4, 1000, 1),
            new("b/y", "b", "q", Backend.Kubernetes, 0, 2, 3, 3, 0, 1000, 1),
            new("c/z", "c", "q", Backend.Kubernetes, 0, 3, 2, 2, 0, 1000, 1),
        ];

        var admissions = FairShareScheduler.Schedule([queue], workloads, []);
        var ahead = EtaEstimator.IndexesAhead(admissions, workloads);

        // b and c (share 0) come before a (share 1); b before c by name; a wants 6 more.
        Assert.Equal((0, 3, 5), (ahead["b/y"], ahead["c/z"], ahead["a/x"]));
    }
}
