using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Protocol;
using BatchRunner.Core.Runs;
using BatchRunner.Faults.Testing;
using Xunit.Abstractions;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>
/// The fault tier for AWS Batch: the dispatcher reaches the stub Batch server through a <see cref="FaultProxy"/> and is
/// driven as the operator drives it (the state it last checkpointed or returned kept, a throw retried on the next
/// reconcile). Whatever is lost on the way, each window of a sweep becomes one array and each index one child.
/// </summary>
public sealed class BatchFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_submit_whose_answer_was_lost_is_found_by_name_on_the_next_reconcile_not_submitted_again()
    {
        await using var rig = await BatchRig.StartAsync(throughProxy: true);
        var job = BatchRig.Job(extra: "  completions: 8\n  parallelism: 8");
        rig.Proxy!.LoseAnswersTo("/v1/submitjob", 1);

        var (progress, throws) = await ReconcileToEndAsync(rig.Dispatcher(), job);

        Assert.Equal((RunPhase.Succeeded, 8), (progress.Phase, progress.Succeeded));
        Assert.Equal(1, rig.Proxy.Injected.GetValueOrDefault(FaultKind.Lost));
        Assert.Equal(1, throws);
        var array = Assert.Single(rig.Server.Jobs);
        Assert.Equal(8, array.Size);
        Assert.Equal(1, rig.Server.CallCount("SubmitJob"));
    }

    [Fact]
    public async Task A_submit_throttled_or_refused_before_it_was_sent_is_retried_at_once_by_the_client()
    {
        await using var rig = await BatchRig.StartAsync(throughProxy: true);
        var job = BatchRig.Job(extra: "  completions: 3\n  parallelism: 3");
        rig.Server.ThrottleSubmits = 2;

        var (progress, throws) = await ReconcileToEndAsync(rig.Dispatcher(), job);

        Assert.Equal((RunPhase.Succeeded, 0), (progress.Phase, throws));
        Assert.Single(rig.Server.Jobs);
        Assert.Equal(3, rig.Server.CallCount("SubmitJob"));
    }

    [Fact]
    public async Task Under_resets_refusals_stalls_cut_and_lost_answers_and_throttling_every_window_is_one_array_and_every_index_runs_once()
    {
        await using var rig = await BatchRig.StartAsync(throughProxy: true);
        var proxy = rig.Proxy!;
        // Windows of 2 (parallelism 8 → a quarter): each sweep is several SubmitJob calls spread over the faults.
        var jobs = Enumerable.Range(0, 6).Select(i => BatchRig.Job($"sweep-{i}", "  completions: 24\n  parallelism: 8")).ToList();

        // Among the faults, the answer to a SubmitJob or a DescribeJobs lost after Batch did it.
        var faults = FaultSchedule.RunAsync(
            proxy, TimeSpan.FromSeconds(20), seed: 1906, (TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500)),
            [HttpAnswer.TooManyRequests, HttpAnswer.JsonServiceUnavailable], loseAnswersTo: ["/v1/submitjob", "/v1/describejobs"]);
        // Sweeps start over the first 8 s and take several seconds each: all of them meet faults.
        var runs = jobs.Select(async (job, i) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(1.5 * i));
            return await ReconcileToEndAsync(rig.Dispatcher(), job, rounds: 2000, pause: TimeSpan.FromMilliseconds(300));
        }).ToList();
        await faults;
        var results = await Task.WhenAll(runs);
        output.WriteLine($"faults injected: {string.Join(", ", proxy.Injected.OrderBy(f => f.Key).Select(f => $"{f.Key} {f.Value}"))}; {proxy.Connections} connections; "
            + $"SubmitJob calls {rig.Server.CallCount("SubmitJob")}, arrays {rig.Server.Jobs.Count}, reconciles that threw {results.Sum(r => r.Throws)}");

        foreach (var (job, (progress, _)) in jobs.Zip(results))
        {
            Assert.Equal((job.Metadata.Name, RunPhase.Succeeded, 24), (job.Metadata.Name, progress.Phase, progress.Succeeded));
            var arrays = rig.Server.Jobs.Where(j => j.Name.StartsWith(job.Metadata.Name + "-", StringComparison.Ordinal)).ToList();
            Assert.Equal(arrays.Count, arrays.Select(a => a.Name).Distinct().Count());
            Assert.Equal(Enumerable.Range(0, 24), arrays.SelectMany(a => Enumerable.Range(0, a.Size).Select(a.IndexOf)).Order());
        }

        Assert.True(proxy.Injected.GetValueOrDefault(FaultKind.Lost) > 0, "no answer was lost");
        Assert.True(proxy.Injected.GetValueOrDefault(FaultKind.Answered) > 0, "Batch never answered with an error");
        Assert.True(proxy.Injected.Values.Sum() >= 15, "the schedule injected faults");
    }

    /// <summary>As the operator runs a dispatch: the state last checkpointed or returned is what the next reconcile starts from; a throw is retried.</summary>
    private static async Task<(AwsBatchProgress Progress, int Throws)> ReconcileToEndAsync(AwsBatchDispatcher dispatcher, Core.Spec.BatchJob job, int rounds = 200, TimeSpan? pause = null)
    {
        var runId = RunIdentity.For(job);
        AwsBatchRunState? kept = null;
        var throws = 0;
        for (var round = 0; round < rounds; round++)
        {
            try
            {
                var progress = await dispatcher.AdvanceAsync(job, runId, kept, (state, _) => { kept = state.Clone(); return Task.CompletedTask; }, allowSubmit: true, allowance: null, default);
                kept = progress.State;
                if (progress.IsTerminal || progress.Problem is not null)
                {
                    return (progress, throws);
                }
            }
            catch (AwsServiceException)
            {
                throws++;
            }

            await Task.Delay(pause ?? TimeSpan.FromMilliseconds(10));
        }

        throw new TimeoutException($"{job.Metadata.Name} did not finish in {rounds} reconciles ({throws} threw)");
    }
}
