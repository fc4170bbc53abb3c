using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Query;
using Xunit;

namespace BatchRunner.Local.Tests;

/// <summary>Rerunning chosen indexes of a local run: only those get new attempts, and their new attempt is the result.</summary>
public sealed class RerunTests : IDisposable
{
    private readonly LocalRun _run = new();

    public void Dispose() => _run.Dispose();

    /// <summary>Indexes 2, 5 and 7 fail while the file "broken" exists; every index writes one result row.</summary>
    private Core.Spec.BatchJob FlakyJob() => _run.Job(
        """
        echo "$BATCHRUNNER_INDEX" >> "$SCRATCH/ran"
        case "$BATCHRUNNER_INDEX" in 2|5|7) [ -e "$SCRATCH/broken" ] && exit 3;; esac
        echo "{\"value\": $BATCHRUNNER_INDEX, \"pass\": \"$(cat "$SCRATCH/pass" 2>/dev/null || echo first)\"}" > "$BATCHRUNNER_OUTPUT_DIR/r.jsonl"
        """,
        "completions: 10\nparallelism: 3\nretry: {attempts: 2, backoffSeconds: 0}");

    [Fact]
    public async Task Rerunning_the_failed_indexes_gives_exactly_those_new_attempts_and_the_run_succeeds()
    {
        var job = FlakyJob();
        File.WriteAllText(Path.Combine(_run.Scratch, "broken"), "");
        var first = await _run.RunAsync(job);
        Assert.Equal((RunPhase.Failed, 7, 3), (first.Phase, first.Succeeded, first.Failed));
        Assert.Equal("2,5,7", IndexRanges.Format(first.FailedIndexes.Select(f => f.Index)));

        File.Delete(Path.Combine(_run.Scratch, "broken"));
        File.Delete(Path.Combine(_run.Scratch, "ran"));
        var rerun = await _run.Executor().RunAsync(job, null, default, rerun: [2, 5, 7]);

        Assert.Equal((RunPhase.Succeeded, 10, 0), (rerun.Phase, rerun.Succeeded, rerun.Failed));
        Assert.Equal(["2", "5", "7"], File.ReadAllLines(Path.Combine(_run.Scratch, "ran")).Order());
        var ledger = _run.Ledger(job);
        // Two failed attempts each before, then attempt 3 succeeded; nothing else got a new attempt.
        Assert.Equal([(2, 3), (5, 3), (7, 3)], ledger.Where(r => r.Attempt > 2).Select(r => (r.Index, r.Attempt)));
        Assert.Equal(10, ledger.Count(r => r.Status == "succeeded"));
        Assert.All(ledger.GroupBy(r => r.Index), g => Assert.Single(g, r => r.Status == "succeeded"));
    }

    [Fact]
    public async Task Rerunning_a_succeeded_index_makes_its_new_attempt_its_result_in_the_table_raw_and_compacted()
    {
        var job = FlakyJob();
        Assert.Equal(RunPhase.Succeeded, (await _run.RunAsync(job)).Phase);
        File.WriteAllText(Path.Combine(_run.Scratch, "pass"), "second");

        var rerun = await _run.Executor().RunAsync(job, null, default, rerun: [4]);

        Assert.Equal(RunPhase.Succeeded, rerun.Phase);
        Assert.Equal([1, 2], _run.Ledger(job).Where(r => r.Index == 4).Select(r => r.Attempt));
        const string sql = "SELECT \"index\", pass, (SELECT count(*) FROM results) AS n FROM results WHERE \"index\" IN (3, 4) ORDER BY 1";
        using (var raw = ResultsQueryEngine.Open(_run.Store))
        {
            Assert.Equal([[3L, "first", 10L], [4L, "second", 10L]], raw.Execute(sql).Rows.Select(r => r.ToArray()));
        }

        await new ResultsCompactor(Microsoft.Extensions.Logging.Abstractions.NullLogger<ResultsCompactor>.Instance, TimeProvider.System)
            .CompactAsync(new Store.LocalResultsStore(_run.Store), job.Metadata.Name, RunIdentity.For(job), force: false, default);
        using var compacted = ResultsQueryEngine.Open(_run.Store);
        Assert.Single(compacted.CompactedRuns);
        Assert.Equal([[3L, "first", 10L], [4L, "second", 10L]], compacted.Execute(sql).Rows.Select(r => r.ToArray()));
        Assert.Equal(11L, compacted.Execute("SELECT count(*) FROM indexes").Rows[0][0]);
    }

    [Fact]
    public async Task A_rerun_of_some_indexes_of_a_run_that_never_ran_the_others_leaves_it_unfinished()
    {
        var job = _run.Job("true", "completions: 6");

        var rerun = await _run.Executor().RunAsync(job, null, default, rerun: [1]);

        Assert.Equal((RunPhase.Cancelled, 1), (rerun.Phase, rerun.Succeeded));
        Assert.StartsWith("Incomplete: 5 of 6 indexes have not run", rerun.Reason, StringComparison.Ordinal);
        Assert.Equal([1], _run.Ledger(job).Select(r => r.Index));
    }

    [Fact]
    public async Task The_local_backend_reruns_a_subset_and_reports_a_finished_run_it_does_not_run_from_its_store()
    {
        var job = FlakyJob();
        File.WriteAllText(Path.Combine(_run.Scratch, "broken"), "");
        await _run.RunAsync(job);
        var backend = new LocalBackend(_run.Executor(), _run.Store, TimeProvider.System, default, TimeSpan.FromMilliseconds(50));
        var run = new BackendRun(job, job.Metadata.Namespace, job.Metadata.Name, "uid", 0, RunIdentity.For(job), IndexSelection.All, null, AllowSubmit: false);

        var looked = await backend.AdvanceAsync(run, (_, _) => Task.CompletedTask, default);
        Assert.Equal((RunPhase.Failed, 7, 3, "2,5,7"), (looked.Phase, looked.Succeeded, looked.Failed, looked.FailedIndexes));
        Assert.Equal([2, 5, 7], looked.Failures.Select(f => f.Index));

        File.Delete(Path.Combine(_run.Scratch, "broken"));
        var outcome = await BackendDriver.FollowAsync(
            backend, run with { AllowSubmit = true, Indexes = IndexSelection.Of([5]), Rerun = 1 }, new BackendStateFile(Path.Combine(_run.Root, "state.json")),
            _ => { }, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, default);

        Assert.Equal((RunPhase.Failed, 8, 2, "2,7"), (outcome.Progress.Phase, outcome.Progress.Succeeded, outcome.Progress.Failed, outcome.Progress.FailedIndexes));
    }
}
