using System.Globalization;
using System.Text.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Sweeps;
using BatchRunner.Local.Execution;
using Xunit;

namespace BatchRunner.Local.Tests;

public sealed class ExecutorSemanticsTests : IDisposable
{
    private readonly LocalRun _run = new();

    public void Dispose() => _run.Dispose();

    [Fact]
    public async Task Runs_every_index_once_and_records_one_succeeded_ledger_row_each()
    {
        var job = _run.Job("echo \"$BATCHRUNNER_INDEX\" >> \"$SCRATCH/ran\"", "completions: 7\nparallelism: 3");

        var report = await _run.RunAsync(job);

        Assert.Equal(RunPhase.Succeeded, report.Phase);
        Assert.Equal(7, report.Succeeded);
        var ran = File.ReadAllLines(Path.Combine(_run.Scratch, "ran")).Select(int.Parse).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 7), ran);
        var ledger = _run.Ledger(job);
        Assert.Equal(Enumerable.Range(0, 7), ledger.Select(r => r.Index));
        Assert.All(ledger, row =>
        {
            Assert.Equal("succeeded", row.Status);
            Assert.Equal(1, row.Attempt);
            Assert.Equal(0, row.ExitCode);
            Assert.Equal("local", row.Backend);
            Assert.True(row.FinishedAt >= row.StartedAt);
        });
    }

    [Fact]
    public async Task Never_runs_more_than_parallelism_indexes_at_once_measured_by_the_processes_themselves()
    {
        // Each process stamps its own start and end; the overlap is measured from those stamps, not from the runner's view.
        var job = _run.Job(
            "date +%s%N > \"$SCRATCH/start.$BATCHRUNNER_INDEX\"; sleep 0.15; date +%s%N > \"$SCRATCH/end.$BATCHRUNNER_INDEX\"",
            "completions: 12\nparallelism: 3");

        var report = await _run.RunAsync(job);

        Assert.Equal(RunPhase.Succeeded, report.Phase);
        var intervals = Enumerable.Range(0, 12).Select(i => (
            Start: long.Parse(File.ReadAllText(Path.Combine(_run.Scratch, $"start.{i}")).Trim(), CultureInfo.InvariantCulture),
            End: long.Parse(File.ReadAllText(Path.Combine(_run.Scratch, $"end.{i}")).Trim(), CultureInfo.InvariantCulture))).ToList();
        var events = intervals.SelectMany(iv => new[] { (Time: iv.Start, Delta: 1), (Time: iv.End, Delta: -1) })
            .OrderBy(e => e.Time).ThenBy(e => e.Delta);
        var running = 0;
        var peak = 0;
        foreach (var (_, delta) in events)
        {
            running += delta;
            peak = Math.Max(peak, running);
        }

        Assert.InRange(peak, 2, 3);
    }

    [Fact]
    public async Task Each_index_sees_the_environment_contract_with_its_own_parameters_and_seed()
    {
        var job = _run.Job(
            "env | grep '^BATCHRUNNER_' | sort > \"$BATCHRUNNER_OUTPUT_DIR/env.txt\"",
            "parallelism: 2\nsweep:\n  grid: {rate: [0.5, 0.9], mode: [fifo, lifo]}\n  repeats: 2\n  seed: 7");
        var plan = new SweepPlan(job.Spec);
        var runId = RunIdentity.For(job);

        await _run.RunAsync(job);

        Assert.Equal(8, plan.Count);
        for (var index = 0; index < plan.Count; index++)
        {
            var outputDir = Path.Combine(_run.Store, $"batchjob=job/run={runId}/index={index}/attempt=1/output");
            var variables = File.ReadAllLines(Path.Combine(outputDir, "env.txt"))
                .Select(line => line.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
            var expected = plan.For(index);
            Assert.Equal(index.ToString(CultureInfo.InvariantCulture), variables[WorkloadEnvironment.Index]);
            Assert.Equal(expected.ParamsJson, variables[WorkloadEnvironment.Params]);
            Assert.Equal(expected.Seed.ToString(CultureInfo.InvariantCulture), variables[WorkloadEnvironment.Seed]);
            Assert.Equal(outputDir, variables[WorkloadEnvironment.OutputDir]);
            Assert.Equal("job", variables[WorkloadEnvironment.Job]);
            Assert.Equal(runId, variables[WorkloadEnvironment.RunId]);
            Assert.Equal(expected.Repeat.ToString(CultureInfo.InvariantCulture), variables[WorkloadEnvironment.Repeat]);
        }

        Assert.Equal("{\"mode\":\"fifo\",\"rate\":0.9}", plan.For(2).ParamsJson);
    }

    [Fact]
    public async Task Arguments_reach_the_process_literally_without_a_shell()
    {
        var job = _run.Job(
            "printf '%s\\n' \"$@\" > \"$BATCHRUNNER_OUTPUT_DIR/args.txt\"",
            "args: [\"sh\", \"two words\", \"$HOME;echo injected\", \"*\", \"\"]");

        await _run.RunAsync(job);

        var output = File.ReadAllLines(Path.Combine(_run.Store, $"batchjob=job/run={RunIdentity.For(job)}/index=0/attempt=1/output/args.txt"));
        Assert.Equal(["two words", "$HOME;echo injected", "*", ""], output);
    }

    [Fact]
    public async Task A_failing_index_is_retried_after_its_backoff_and_each_attempt_has_its_own_ledger_row()
    {
        var job = _run.Job(
            "m=\"$SCRATCH/tried.$BATCHRUNNER_INDEX\"; if [ -f \"$m\" ]; then exit 0; fi; touch \"$m\"; echo 'first try fails' >&2; exit 3",
            "completions: 2\nparallelism: 2\nretry: {attempts: 3, backoffSeconds: 0.4}");

        var report = await _run.RunAsync(job);

        Assert.Equal(RunPhase.Succeeded, report.Phase);
        var ledger = _run.Ledger(job);
        Assert.Equal([(0, 1, "failed"), (0, 2, "succeeded"), (1, 1, "failed"), (1, 2, "succeeded")], ledger.Select(r => (r.Index, r.Attempt, r.Status)));
        Assert.All(ledger.Where(r => r.Attempt == 1), r =>
        {
            Assert.Equal(3, r.ExitCode);
            Assert.Equal("exit code 3: first try fails", r.Reason);
        });
        foreach (var index in new[] { 0, 1 })
        {
            var gap = ledger.Single(r => r.Index == index && r.Attempt == 2).StartedAt - ledger.Single(r => r.Index == index && r.Attempt == 1).FinishedAt;
            Assert.True(gap >= TimeSpan.FromSeconds(0.35), $"index {index} retried after {gap.TotalSeconds:F3}s, before its 0.4s backoff");
        }
    }

    [Fact]
    public async Task An_index_out_of_attempts_fails_the_run_without_stopping_the_others()
    {
        var job = _run.Job(
            "if [ \"$BATCHRUNNER_INDEX\" = 1 ]; then echo \"boom at $BATCHRUNNER_INDEX\" >&2; exit 4; fi; echo '{\"ok\":1}' > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"",
            "completions: 5\nparallelism: 2\nretry: {attempts: 2, backoffSeconds: 0}");

        var report = await _run.RunAsync(job);

        Assert.Equal(RunPhase.Failed, report.Phase);
        Assert.StartsWith("IndexesFailed: 1 of 5", report.Reason);
        Assert.Equal(4, report.Succeeded);
        var failed = Assert.Single(report.FailedIndexes);
        Assert.Equal((1, 2, "exit code 4: boom at 1"), (failed.Index, failed.Attempts, failed.LastReason));
        var ledger = _run.Ledger(job);
        Assert.Equal(6, ledger.Count);
        Assert.Equal(["failed", "failed"], ledger.Where(r => r.Index == 1).Select(r => r.Status));
        Assert.All(ledger.Where(r => r.Index != 1), r => Assert.Equal(1, r.OutputFiles));
    }

    [Fact]
    public async Task A_timeout_kills_the_whole_process_tree_of_the_attempt()
    {
        var job = _run.Job(
            "sleep 30 & echo $! > \"$SCRATCH/child.$BATCHRUNNER_INDEX\"; sleep 30",
            "completions: 2\nparallelism: 2\ntimeoutSeconds: 0.5");
        var started = DateTime.UtcNow;

        var report = await _run.RunAsync(job);

        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15));
        Assert.Equal(RunPhase.Failed, report.Phase);
        var ledger = _run.Ledger(job);
        Assert.All(ledger, r =>
        {
            Assert.Equal("timed_out", r.Status);
            Assert.Contains("timed out after 0.5s", r.Reason, StringComparison.Ordinal);
        });
        foreach (var index in new[] { 0, 1 })
        {
            var grandchild = int.Parse(File.ReadAllText(Path.Combine(_run.Scratch, $"child.{index}")).Trim(), CultureInfo.InvariantCulture);
            Assert.True(await Pids.WaitUntilGoneAsync(grandchild, TimeSpan.FromSeconds(5)), $"the background child {grandchild} of index {index} survived its timeout");
        }
    }

    [Fact]
    public async Task The_deadline_stops_every_running_index_and_fails_the_run()
    {
        var job = _run.Job("echo $$ > \"$SCRATCH/pid.$BATCHRUNNER_INDEX\"; sleep 30", "completions: 6\nparallelism: 2\ndeadlineSeconds: 1");
        var started = DateTime.UtcNow;

        var report = await _run.RunAsync(job);

        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15));
        Assert.Equal(RunPhase.Failed, report.Phase);
        Assert.StartsWith("DeadlineExceeded", report.Reason);
        var ledger = _run.Ledger(job);
        Assert.Equal(2, ledger.Count);
        Assert.All(ledger, r => Assert.Equal("interrupted: the run's deadline (spec.deadlineSeconds) passed", r.Reason));
        foreach (var pidFile in Directory.EnumerateFiles(_run.Scratch, "pid.*"))
        {
            Assert.True(await Pids.WaitUntilGoneAsync(int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture), TimeSpan.FromSeconds(5)));
        }

        using var state = _run.State();
        Assert.DoesNotContain(state.LoadIndexes(report.RunId).Values, i => i.Phase is State.IndexPhase.Failed or State.IndexPhase.Succeeded);
    }

    [Fact]
    public async Task Cancelling_stops_the_run_and_running_the_spec_again_resumes_only_what_had_not_succeeded()
    {
        // Indexes 0 and 1 finish at once; the others wait for a go file that only the second invocation provides.
        var job = _run.Job(
            "echo $BATCHRUNNER_INDEX >> \"$SCRATCH/ran\"; if [ $BATCHRUNNER_INDEX -ge 2 ] && [ ! -f \"$SCRATCH/go\" ]; then sleep 30; fi",
            "completions: 6\nparallelism: 2");
        using var cancel = new CancellationTokenSource();
        var first = _run.RunAsync(job, cancel.Token);
        await WaitForAsync(() => File.Exists(Path.Combine(_run.Scratch, "ran")) && File.ReadAllLines(Path.Combine(_run.Scratch, "ran")).Length >= 4);
        await cancel.CancelAsync();

        var interrupted = await first;
        File.WriteAllText(Path.Combine(_run.Scratch, "go"), "");
        var resumed = await _run.RunAsync(job);

        Assert.Equal(RunPhase.Cancelled, interrupted.Phase);
        Assert.Equal(2, interrupted.Succeeded);
        Assert.Equal(RunPhase.Succeeded, resumed.Phase);
        Assert.Equal(6, resumed.Succeeded);
        var runs = File.ReadAllLines(Path.Combine(_run.Scratch, "ran")).GroupBy(x => x).ToDictionary(g => int.Parse(g.Key, CultureInfo.InvariantCulture), g => g.Count());
        Assert.Equal(1, runs[0]);
        Assert.Equal(1, runs[1]);
        var ledger = _run.Ledger(job);
        Assert.Equal(6, ledger.Count(r => r.Status == "succeeded"));
        Assert.All(ledger.Where(r => r.Status == "interrupted"), r => Assert.Equal("interrupted: the run was cancelled", r.Reason));
        Assert.All(ledger.Where(r => r.Index >= 2 && r.Status == "succeeded"), r => Assert.True(r.Attempt >= 1));
    }

    [Fact]
    public async Task A_cancel_requested_through_the_store_stops_a_run_in_progress()
    {
        var job = _run.Job("sleep 30", "completions: 3");
        var running = _run.RunAsync(job);
        await WaitForAsync(() => _run.Ledger(job).Count == 0 && Directory.Exists(Path.Combine(_run.Store, $"batchjob=job/run={RunIdentity.For(job)}/index=0")));

        using (var state = _run.State())
        {
            Assert.Equal(1, state.RequestCancel("job", null));
        }

        var report = await running.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(RunPhase.Cancelled, report.Phase);
    }

    [Fact]
    public async Task A_command_that_does_not_exist_is_rejected_before_anything_runs()
    {
        var job = BatchJobParser.Parse("""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: missing}
            spec: {command: [no-such-program-anywhere], completions: 3}
            """).GetJobOrThrow();

        var error = await Assert.ThrowsAsync<InvalidSpecException>(() => _run.RunAsync(job));

        Assert.Equal("spec.command[0]: \"no-such-program-anywhere\" was not found on PATH", Assert.Single(error.Errors).ToString());
        Assert.Empty(_run.Ledger(job));
    }

    [Fact]
    public async Task Two_runners_of_the_same_run_cannot_work_at_once()
    {
        var job = _run.Job("sleep 30", "completions: 1");
        using var cancel = new CancellationTokenSource();
        var first = _run.RunAsync(job, cancel.Token);
        await WaitForAsync(() => Directory.Exists(Path.Combine(_run.Store, $"batchjob=job/run={RunIdentity.For(job)}/index=0")));

        var error = await Assert.ThrowsAsync<RunBusyException>(() => _run.RunAsync(job));

        Assert.Contains("already running", error.Message, StringComparison.Ordinal);
        await cancel.CancelAsync();
        Assert.Equal(RunPhase.Cancelled, (await first).Phase);
    }

    internal static async Task WaitForAsync(Func<bool> condition, double seconds = 15)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "condition not reached in time");
            await Task.Delay(20);
        }
    }
}
