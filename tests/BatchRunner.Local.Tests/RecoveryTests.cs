using System.Diagnostics;
using System.Text.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Local.Execution;
using BatchRunner.Local.State;
using BatchRunner.Store;
using Xunit;

namespace BatchRunner.Local.Tests;

/// <summary>
/// What a runner finds when an earlier one died under a run: state says an attempt started and never finished.
/// These tests set that state up directly; the end-to-end tests do it with a real kill -9.
/// </summary>
public sealed class RecoveryTests : IDisposable
{
    private readonly LocalRun _run = new();

    public void Dispose() => _run.Dispose();

    [Fact]
    public async Task An_orphaned_attempt_still_running_is_killed_recorded_as_interrupted_and_run_again()
    {
        var job = _run.Job("echo ran >> \"$SCRATCH/ran.$BATCHRUNNER_INDEX\"", "completions: 2");
        var runId = RunIdentity.For(job);
        using var orphan = Process.Start(new ProcessStartInfo("sleep", "60"))!;
        using (var state = _run.State())
        {
            state.BeginInvocation(runId, "default", "job", RunIdentity.SpecJson(job), 2, 99999, DateTimeOffset.UtcNow);
            new LocalResultsStore(_run.Store).PrepareAttempt("job", runId, 0, 1);
            state.RecordAttemptStarted(runId, 0, 1, orphan.Id, ProcessIdentity.StartTicks(orphan.Id), DateTimeOffset.UtcNow);
        }

        var report = await _run.RunAsync(job);

        Assert.True(orphan.WaitForExit(TimeSpan.FromSeconds(5)), "the orphaned attempt's process was left running");
        Assert.Equal(RunPhase.Succeeded, report.Phase);
        var rows = _run.Ledger(job).Where(r => r.Index == 0).ToList();
        Assert.Equal([(1, "interrupted"), (2, "succeeded")], rows.Select(r => (r.Attempt, r.Status)));
        Assert.Equal("interrupted: the runner stopped while this attempt ran", rows[0].Reason);
        Assert.Single(File.ReadAllLines(Path.Combine(_run.Scratch, "ran.0")));
    }

    [Fact]
    public async Task A_recorded_pid_now_owned_by_another_process_is_left_alone()
    {
        var job = _run.Job("true", "completions: 1");
        var runId = RunIdentity.For(job);
        using var stranger = Process.Start(new ProcessStartInfo("sleep", "60"))!;
        try
        {
            using (var state = _run.State())
            {
                state.BeginInvocation(runId, "default", "job", RunIdentity.SpecJson(job), 1, 99999, DateTimeOffset.UtcNow);
                // Same pid, different start time: the pid was reused by a process that is not ours.
                state.RecordAttemptStarted(runId, 0, 1, stranger.Id, ProcessIdentity.StartTicks(stranger.Id) + 12345, DateTimeOffset.UtcNow);
            }

            var report = await _run.RunAsync(job);

            Assert.Equal(RunPhase.Succeeded, report.Phase);
            Assert.False(stranger.HasExited);
        }
        finally
        {
            stranger.Kill();
        }
    }

    [Fact]
    public async Task An_attempt_that_succeeded_before_its_runner_died_is_adopted_and_never_run_again()
    {
        var job = _run.Job("echo ran >> \"$SCRATCH/ran.$BATCHRUNNER_INDEX\"", "completions: 2");
        var runId = RunIdentity.For(job);
        var started = DateTimeOffset.UtcNow;
        using (var state = _run.State())
        {
            state.BeginInvocation(runId, "default", "job", RunIdentity.SpecJson(job), 2, 99999, started);
            state.RecordAttemptStarted(runId, 1, 1, null, null, started);
        }

        // The runner wrote the ledger row and died before recording the attempt as finished.
        new LocalResultsStore(_run.Store).WriteLedgerRow(new LedgerRow
        {
            BatchJob = "job", Namespace = "default", Run = runId, Index = 1, Attempt = 1, Repeat = 0, Seed = 1,
            Params = JsonDocument.Parse("{}").RootElement, Status = "succeeded", ExitCode = 0,
            StartedAt = started, FinishedAt = started, DurationSeconds = 0, Backend = "local",
        });

        var report = await _run.RunAsync(job);

        Assert.Equal(RunPhase.Succeeded, report.Phase);
        Assert.Equal(2, report.Succeeded);
        Assert.True(File.Exists(Path.Combine(_run.Scratch, "ran.0")));
        Assert.False(File.Exists(Path.Combine(_run.Scratch, "ran.1")), "index 1 had succeeded and was run again");
    }

    [Fact]
    public async Task An_attempt_folder_made_before_its_start_was_recorded_is_not_reused()
    {
        var job = _run.Job("echo attempt >> \"$BATCHRUNNER_OUTPUT_DIR/out.txt\"", "completions: 1");
        var runId = RunIdentity.For(job);
        var store = new LocalResultsStore(_run.Store);
        var leftover = store.PrepareAttempt("job", runId, 0, 1);
        File.WriteAllText(Path.Combine(leftover, "partial.jsonl"), "{\"half\":");

        await _run.RunAsync(job);

        var row = Assert.Single(_run.Ledger(job));
        Assert.Equal(2, row.Attempt);
        Assert.Equal("{\"half\":", File.ReadAllText(Path.Combine(leftover, "partial.jsonl")));
    }

    [Fact]
    public async Task A_succeeded_attempt_the_state_never_recorded_is_adopted_from_its_ledger_row()
    {
        // The runner wrote the ledger row, queued the transition and died before the group commit: the state knows
        // nothing of index 1, the disk has its succeeded attempt.
        var job = _run.Job("echo ran >> \"$SCRATCH/ran.$BATCHRUNNER_INDEX\"", "completions: 2");
        var runId = RunIdentity.For(job);
        var started = DateTimeOffset.UtcNow;
        using (var state = _run.State())
        {
            state.BeginInvocation(runId, "default", "job", RunIdentity.SpecJson(job), 2, 99999, started);
        }

        var store = new LocalResultsStore(_run.Store);
        store.PrepareAttempt("job", runId, 1, 1);
        store.WriteLedgerRow(new LedgerRow
        {
            BatchJob = "job", Namespace = "default", Run = runId, Index = 1, Attempt = 1, Repeat = 0, Seed = 1,
            Params = JsonDocument.Parse("{}").RootElement, Status = "succeeded", ExitCode = 0,
            StartedAt = started, FinishedAt = started, DurationSeconds = 0, Backend = "local",
        });

        var report = await _run.RunAsync(job);

        Assert.Equal(RunPhase.Succeeded, report.Phase);
        Assert.Equal(2, report.Succeeded);
        Assert.False(File.Exists(Path.Combine(_run.Scratch, "ran.1")), "index 1 had succeeded and was run again");
        using var after = _run.State();
        Assert.Equal((IndexPhase.Succeeded, 1), (after.LoadIndexes(runId)[1].Phase, after.LoadIndexes(runId)[1].Attempts));
    }

    [Fact]
    public async Task A_failed_attempt_the_state_never_recorded_is_not_adopted_and_its_number_is_not_reused()
    {
        var job = _run.Job("true", "completions: 1");
        var runId = RunIdentity.For(job);
        var started = DateTimeOffset.UtcNow;
        var store = new LocalResultsStore(_run.Store);
        store.PrepareAttempt("job", runId, 0, 1);
        store.WriteLedgerRow(new LedgerRow
        {
            BatchJob = "job", Namespace = "default", Run = runId, Index = 0, Attempt = 1, Repeat = 0, Seed = 1,
            Params = JsonDocument.Parse("{}").RootElement, Status = "failed", ExitCode = 1,
            StartedAt = started, FinishedAt = started, DurationSeconds = 0, Backend = "local",
        });

        var report = await _run.RunAsync(job);

        Assert.Equal(RunPhase.Succeeded, report.Phase);
        Assert.Equal([(1, "failed"), (2, "succeeded")], _run.Ledger(job).Select(r => (r.Attempt, r.Status)));
    }

    [Fact]
    public async Task A_process_of_the_run_that_the_state_never_recorded_is_found_by_its_environment_and_killed()
    {
        var job = _run.Job("true", "completions: 1");
        var runId = RunIdentity.For(job);
        var runFolder = Path.Combine(_run.Store, StoreLayout.RunPrefix("job", runId));
        Directory.CreateDirectory(runFolder);

        // An attempt of this run (started as its own process group, as the launcher does) and, with the same run id,
        // an attempt of another store's run, which is not this runner's to kill.
        using var orphan = StartSleeper(Path.Combine(runFolder, "index=0/attempt=1/output"));
        using var stranger = StartSleeper(Path.Combine(_run.Root, "other-store", StoreLayout.RunPrefix("job", runId), "index=0/attempt=1/output"));
        try
        {
            var report = await _run.RunAsync(job);

            Assert.Equal(RunPhase.Succeeded, report.Phase);
            Assert.True(orphan.WaitForExit(TimeSpan.FromSeconds(5)), "the unrecorded orphan was left running");
            Assert.False(stranger.HasExited, "a process of another store's run was killed");
        }
        finally
        {
            stranger.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public void The_group_commit_writer_makes_every_queued_transition_visible_on_flush_and_on_dispose()
    {
        var runId = "r0000000000a";
        using var state = _run.State();
        state.BeginInvocation(runId, "default", "job", "{}", 1000, 1, DateTimeOffset.UtcNow);
        var now = DateTimeOffset.UtcNow;
        using (var writer = new GroupCommitWriter(state, TimeSpan.FromSeconds(30)))
        {
            for (var i = 0; i < 500; i++)
            {
                writer.Record(StateTransition.Started(runId, i, 1, 1000 + i, 1, now));
                writer.Record(StateTransition.Finished(runId, i, 1, AttemptOutcome.Succeeded, IndexPhase.Succeeded, null, now, now));
            }

            // The interval is far longer than the test: only the flush can have committed them.
            writer.Flush();
            Assert.Equal(500, state.LoadIndexes(runId).Values.Count(i => i.Phase == IndexPhase.Succeeded));

            writer.Record(StateTransition.Started(runId, 500, 1, 1500, 1, now));
        }

        Assert.Equal(IndexPhase.Running, state.LoadIndexes(runId)[500].Phase);
        Assert.Equal(1500, Assert.Single(state.UnfinishedAttempts(runId)).Pid);
    }

    private static Process StartSleeper(string outputDir)
    {
        var start = new ProcessStartInfo("setsid", ["sleep", "60"]);
        start.Environment["BATCHRUNNER_OUTPUT_DIR"] = outputDir;
        return Process.Start(start)!;
    }
}
