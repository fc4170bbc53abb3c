using System.Text.Json.Nodes;
using BatchRunner.Aws.Batch;
using BatchRunner.Core.Runs;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>The AWS Batch dispatcher against the stub Batch endpoint: arrays, windows, failures, idempotency, errors.</summary>
public sealed class AwsBatchDispatcherTests
{
    [Fact]
    public async Task A_sweep_runs_as_one_array_whose_children_carry_the_wrapper_command_and_their_offset()
    {
        await using var rig = await BatchRig.StartAsync();
        var job = BatchRig.Job(extra: "  completions: 6\n  parallelism: 6\n  retry: {attempts: 3}\n  timeoutSeconds: 30");
        var runId = RunIdentity.For(job);

        var progress = await BatchRig.RunToEndAsync(rig.Dispatcher(), job);

        Assert.Equal((RunPhase.Succeeded, 6, 0), (progress.Phase, progress.Succeeded, progress.Failed));
        var submitted = Assert.Single(rig.Server.Jobs);
        Assert.Equal(($"sweep-{runId}-0", 6, BatchRig.Queue), (submitted.Name, submitted.Size, submitted.Queue));
        var request = submitted.Request;
        var specPath = Path.Combine(rig.Store, $"batchjob=sweep/run={runId}/_spec.json");
        Assert.Equal(
            ["/opt/batchrunner/batchrunner-exec", "--spec", specPath, "--store", rig.Store, "--", "dotnet", "mmc-queue.dll", "--fast"],
            request["containerOverrides"]!["command"]!.AsArray().Select(c => (string)c!));
        Assert.Equal("""[{"name":"BATCHRUNNER_INDEX_OFFSET","value":"0"},{"name":"BATCHRUNNER_BACKEND","value":"aws-batch"}]""", request["containerOverrides"]!["environment"]!.ToJsonString());
        Assert.Equal(3, (int)request["retryStrategy"]!["attempts"]!);
        Assert.Equal(60, (int)request["timeout"]!["attemptDurationSeconds"]!);
        Assert.Equal("""{"batchrunner.io/batchjob":"sweep","batchrunner.io/namespace":"team-a","batchrunner.io/run":"__RUN__"}""".Replace("__RUN__", runId, StringComparison.Ordinal),
            request["tags"]!.ToJsonString());
        Assert.Equal(RunIdentity.SpecJson(job), await File.ReadAllTextAsync(specPath));
    }

    [Fact]
    public async Task A_part_of_a_split_run_submits_only_its_indexes_and_counts_only_them()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.ExitCode = (index, _) => index == 9 ? 3 : 0;
        var job = BatchRig.Job(extra: "  completions: 12\n  parallelism: 4");
        var runId = RunIdentity.For(job);
        var dispatcher = rig.Dispatcher();

        AwsBatchProgress progress = null!;
        AwsBatchRunState? state = null;
        for (var round = 0; round < 200 && progress?.IsTerminal != true; round++)
        {
            progress = await dispatcher.AdvanceAsync(job, runId, state, null, allowSubmit: true, allowance: null, default, part: (8, 12));
            state = progress.State;
        }

        // Indexes 8-11 only, in windows from 8; the part's counts, its failed index by its number in the run.
        Assert.Equal((RunPhase.Failed, 4, 3, 1, "9"), (progress.Phase, progress.Total, progress.Succeeded, progress.Failed, progress.FailedIndexes));
        Assert.Equal(Enumerable.Range(8, 4), rig.Server.Jobs.SelectMany(j => Enumerable.Range(0, j.Size).Select(j.IndexOf)).Order());
        Assert.All(rig.Server.Jobs, j => Assert.StartsWith($"sweep-{runId}-", j.Name, StringComparison.Ordinal));
        Assert.Equal((8, 12), (state!.PartStart, state.PartEnd));

        // A part is never rerun here: AWS Batch knows only its part of the run's outcome.
        var rerun = await dispatcher.AdvanceAsync(job, runId, state, null, allowSubmit: true, allowance: null, default, rerun: (1, [9]), part: (8, 12));
        Assert.Equal(AwsBatchReasons.RerunRefused, rerun.Problem!.Reason);
        Assert.Contains("split across backends", rerun.Problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_single_index_runs_as_a_plain_job_with_its_offset()
    {
        await using var rig = await BatchRig.StartAsync();
        var job = BatchRig.Job();

        var progress = await BatchRig.RunToEndAsync(rig.Dispatcher(), job);

        Assert.Equal(RunPhase.Succeeded, progress.Phase);
        var submitted = Assert.Single(rig.Server.Jobs);
        Assert.False(submitted.IsArray);
        Assert.Null(submitted.Request["arrayProperties"]);
        Assert.Equal(1, (int)submitted.Request["retryStrategy"]!["attempts"]!);
        Assert.Null(submitted.Request["retryStrategy"]!["evaluateOnExit"]);
    }

    [Fact]
    public async Task More_than_ten_thousand_indexes_go_in_several_arrays_with_their_offsets()
    {
        await using var rig = await BatchRig.StartAsync();
        var job = BatchRig.Job(extra: "  completions: 25000\n  parallelism: 25000");

        var progress = await BatchRig.RunToEndAsync(rig.Dispatcher(), job);

        Assert.Equal((RunPhase.Succeeded, 25_000), (progress.Phase, progress.Succeeded));
        Assert.Equal([(10_000, 0), (10_000, 10_000), (5_000, 20_000)], rig.Server.Jobs.Select(j => (j.Size, j.Offset)));
        Assert.Equal(3, rig.Server.CallCount("SubmitJob"));
    }

    [Fact]
    public async Task A_million_indexes_go_in_arrays_of_ten_thousand_and_the_state_stays_small_with_half_of_them_failed()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.ExitCode = (index, _) => index % 2;
        var job = BatchRig.Job(extra: "  completions: 1000000\n  parallelism: 100000");

        var progress = await BatchRig.RunToEndAsync(rig.Dispatcher(), job, rounds: 2000);

        Assert.Equal((RunPhase.Failed, 1_000_000, 500_000, 500_000), (progress.Phase, progress.Total, progress.Succeeded, progress.Failed));
        Assert.Equal(100, rig.Server.Jobs.Count);
        Assert.All(rig.Server.Jobs, j => Assert.Equal(10_000, j.Size));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => i * 10_000), rig.Server.Jobs.Select(j => j.Offset).Order());
        // The state travels in the BatchJob's status: its list of failed indexes keeps its beginning, the count all.
        Assert.True(progress.State.FailedIndexesTruncated);
        Assert.StartsWith("1,3,5,", progress.FailedIndexes, StringComparison.Ordinal);
        var size = progress.State.ToJson().GetRawText().Length;
        Assert.True(size < 40 * 1024, $"the state is {size} bytes");
    }

    [Fact]
    public async Task Failed_children_are_named_with_their_reason_and_exit_code_after_their_retries()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.ExitCode = (index, attempt) => index switch
        {
            3 => 2,
            5 when attempt == 1 => 1,
            7 => 137,
            _ => 0,
        };
        var job = BatchRig.Job(extra: "  completions: 10\n  parallelism: 10\n  retry: {attempts: 2}");

        var progress = await BatchRig.RunToEndAsync(rig.Dispatcher(), job);

        Assert.Equal((RunPhase.Failed, 8, 2), (progress.Phase, progress.Succeeded, progress.Failed));
        Assert.Equal("3,7", progress.FailedIndexes);
        Assert.Equal([(3, 2), (7, 137)], progress.Failures.Select(f => (f.Index, f.ExitCode ?? -1)));
        Assert.All(progress.Failures, f => Assert.Contains("Essential container in task exited", f.Reason, StringComparison.Ordinal));
        Assert.Contains("index 3: Essential container in task exited (exit code 2)", progress.FailureMessage, StringComparison.Ordinal);
        var rules = rig.Server.Jobs[0].Request["retryStrategy"]!["evaluateOnExit"]!.AsArray();
        Assert.Contains(rules, r => (string?)r!["onExitCode"] == "*" && (string?)r["action"] == "RETRY");
    }

    [Fact]
    public async Task A_rerun_gives_the_chosen_indexes_new_arrays_in_windows_within_parallelism_and_only_once()
    {
        await using var rig = await BatchRig.StartAsync();
        var failing = new HashSet<int> { 1, 4, 5, 6, 9, 30 };
        rig.Server.ExitCode = (index, _) => failing.Contains(index) ? 1 : 0;
        var job = BatchRig.Job(extra: "  completions: 40\n  parallelism: 8");
        var dispatcher = rig.Dispatcher();
        var first = await BatchRig.RunToEndAsync(dispatcher, job);
        Assert.Equal((RunPhase.Failed, 34, "1,4-6,9,30"), (first.Phase, first.Succeeded, first.FailedIndexes));
        var submittedBefore = rig.Server.Jobs.Count;

        // Index 30 keeps failing; index 12 had succeeded and is rerun too.
        failing = [30];
        var runId = RunIdentity.For(job);
        var state = first.State;
        AwsBatchProgress progress;
        var most = 0;
        do
        {
            progress = await dispatcher.AdvanceAsync(job, runId, state, null, allowSubmit: true, allowance: null, default, (1, [1, 4, 5, 6, 9, 12, 30]));
            state = progress.State;
            most = Math.Max(most, rig.Server.UnfinishedIndexes);
        }
        while (!progress.IsTerminal);

        Assert.Equal((RunPhase.Failed, 39, 1, "30", 1), (progress.Phase, progress.Succeeded, progress.Failed, progress.FailedIndexes, progress.State.Reruns));
        var rerun = rig.Server.Jobs.Skip(submittedBefore).ToList();
        Assert.Equal([1, 4, 5, 6, 9, 12, 30], rerun.SelectMany(j => j.Listed!));
        Assert.All(rerun, j => Assert.StartsWith($"sweep-{runId}-r1-", j.Name, StringComparison.Ordinal));
        Assert.InRange(most, 1, 8);

        // Taken once: the same rerun asked again submits nothing; a run still going refuses a new one.
        var same = await dispatcher.AdvanceAsync(job, runId, state, null, allowSubmit: true, allowance: null, default, (1, [1, 4]));
        Assert.Equal((RunPhase.Failed, rig.Server.Jobs.Count), (same.Phase, submittedBefore + rerun.Count));
        var unfinished = first.State.Clone();
        unfinished.NextIndex = 10;
        var refused = await dispatcher.AdvanceAsync(job, runId, unfinished, null, allowSubmit: true, allowance: null, default, (2, [1]));
        Assert.Equal(AwsBatchReasons.RerunRefused, refused.Problem?.Reason);
    }

    [Fact]
    public async Task A_queue_s_allowance_is_honoured_windows_are_cut_to_it_nothing_goes_at_zero_and_a_raised_one_is_used()
    {
        await using var rig = await BatchRig.StartAsync();
        var job = BatchRig.Job(extra: "  completions: 40\n  parallelism: 8");
        var mostWhileThree = 0;
        var mostAfter = 0;

        // Rounds 0-2 admit nothing, 3-29 three at once, then the whole parallelism.
        var progress = await BatchRig.RunToEndAsync(rig.Dispatcher(), job, allowance: round => round < 3 ? 0 : round < 30 ? 3 : null, each: p =>
        {
            var unfinished = rig.Server.UnfinishedIndexes;
            if (p.State.NextIndex == 0)
            {
                Assert.Empty(rig.Server.Jobs);
            }
            else if (rig.Server.Jobs.Count < 14)
            {
                mostWhileThree = Math.Max(mostWhileThree, unfinished);
            }
            else
            {
                mostAfter = Math.Max(mostAfter, unfinished);
            }
        });

        Assert.Equal((RunPhase.Succeeded, 40), (progress.Phase, progress.Succeeded));
        Assert.InRange(mostWhileThree, 1, 3);
        Assert.InRange(mostAfter, 1, 8);
        Assert.Equal(Enumerable.Range(0, 40), rig.Server.Jobs.SelectMany(j => Enumerable.Range(j.Offset, j.Size)).Order());
    }

    [Fact]
    public async Task Parallelism_is_honoured_by_submitting_windows_as_earlier_children_finish()
    {
        await using var rig = await BatchRig.StartAsync();
        var job = BatchRig.Job(extra: "  completions: 40\n  parallelism: 8");
        var most = 0;

        var progress = await BatchRig.RunToEndAsync(rig.Dispatcher(), job, each: _ => most = Math.Max(most, rig.Server.UnfinishedIndexes));

        Assert.Equal((RunPhase.Succeeded, 40), (progress.Phase, progress.Succeeded));
        Assert.Equal(2, progress.State.WindowSize);
        Assert.Equal(20, rig.Server.Jobs.Count);
        Assert.InRange(most, 1, 8);
        Assert.True(most >= 6, $"windows keep the parallelism busy: at most {most} unfinished at once");
        Assert.Equal(Enumerable.Range(0, 20).Select(w => w * 2), rig.Server.Jobs.Select(j => j.Offset));
    }

    [Fact]
    public async Task A_controller_killed_between_submitting_and_recording_does_not_submit_again()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.AdvanceOnDescribe = false;
        var job = BatchRig.Job(extra: "  completions: 30\n  parallelism: 12");
        var runId = RunIdentity.For(job);

        // The first controller submits, then dies before its state is written anywhere.
        var lost = await rig.Dispatcher().AdvanceAsync(job, runId, null, null, allowSubmit: true, allowance: null, default);
        Assert.Equal(4, rig.Server.CallCount("SubmitJob"));

        // Its successor starts from nothing: it finds each window by name instead of submitting it again.
        var found = await rig.Dispatcher().AdvanceAsync(job, runId, null, null, allowSubmit: true, allowance: null, default);

        Assert.Equal(4, rig.Server.CallCount("SubmitJob"));
        Assert.Equal(lost.State.Arrays.Select(a => a.JobId), found.State.Arrays.Select(a => a.JobId));
        Assert.Equal(12, found.State.NextIndex);
        rig.Server.AdvanceOnDescribe = true;
        var end = await BatchRig.RunToEndAsync(rig.Dispatcher(), job, found.State);
        Assert.Equal((RunPhase.Succeeded, 30), (end.Phase, end.Succeeded));
        Assert.Equal(10, rig.Server.Jobs.Count);
        Assert.Equal(10, rig.Server.Jobs.Select(j => j.Name).Distinct().Count());
    }

    [Fact]
    public async Task A_checkpoint_sees_each_submission_before_the_next()
    {
        await using var rig = await BatchRig.StartAsync();
        var job = BatchRig.Job(extra: "  completions: 3\n  parallelism: 2");
        var seen = new List<int>();

        await rig.Dispatcher().AdvanceAsync(job, RunIdentity.For(job), null, (state, _) =>
        {
            seen.Add(state.Arrays.Count);
            Assert.Equal(state.Arrays.Count, rig.Server.Jobs.Count);
            return Task.CompletedTask;
        }, allowSubmit: true, allowance: null, default);

        Assert.Equal([1, 2], seen);
    }

    [Fact]
    public async Task One_job_definition_per_container_shape_is_registered_and_reused_after_a_restart()
    {
        await using var rig = await BatchRig.StartAsync();

        await BatchRig.RunToEndAsync(rig.Dispatcher(), BatchRig.Job("first"));
        await BatchRig.RunToEndAsync(rig.Dispatcher(), BatchRig.Job("second", extra: "  completions: 3\n  parallelism: 3"));
        await BatchRig.RunToEndAsync(rig.Dispatcher(), BatchRig.Job("bigger", extra: "  resources: {cpu: \"2\", memory: 5Gi}"));

        Assert.Equal(2, rig.Server.CallCount("RegisterJobDefinition"));
        var definitions = rig.Server.Bodies("RegisterJobDefinition").Select(b => JsonNode.Parse(b)!).ToList();
        Assert.Equal(["FARGATE"], definitions[0]["platformCapabilities"]!.AsArray().Select(p => (string)p!));
        var container = definitions[0]["containerProperties"]!;
        Assert.Equal("""[{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"2048"}]""", container["resourceRequirements"]!.ToJsonString());
        Assert.Equal("""[{"type":"VCPU","value":"2"},{"type":"MEMORY","value":"5120"}]""", definitions[1]["containerProperties"]!["resourceRequirements"]!.ToJsonString());
        Assert.Equal(BatchRig.ExecutionRole, (string?)container["executionRoleArn"]);
        Assert.Equal("arn:aws:iam::123456789012:role/batchrunner-job", (string?)container["jobRoleArn"]);
        Assert.Equal("""{"logDriver":"awslogs","options":{"awslogs-stream-prefix":"batchrunner","awslogs-group":"/batchrunner/jobs"}}""", container["logConfiguration"]!.ToJsonString());
        Assert.Equal("""[{"name":"LOG_LEVEL","value":"debug"}]""", container["environment"]!.ToJsonString());
        Assert.Equal(rig.Server.Jobs[0].Definition, rig.Server.Jobs[1].Definition);
        Assert.NotEqual(rig.Server.Jobs[0].Definition, rig.Server.Jobs[2].Definition);
    }

    [Fact]
    public async Task Throttled_submissions_are_retried_with_backoff()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.ThrottleSubmits = 3;
        var job = BatchRig.Job(extra: "  completions: 4\n  parallelism: 4");

        var progress = await BatchRig.RunToEndAsync(rig.Dispatcher(), job);

        Assert.Equal(RunPhase.Succeeded, progress.Phase);
        Assert.Equal(3, rig.Server.Throttled);
        Assert.Equal(4, rig.Server.CallCount("SubmitJob"));
        Assert.Single(rig.Server.Jobs);
    }

    [Fact]
    public async Task Access_denied_blocks_the_run_with_the_aws_message_and_nothing_is_submitted()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.DenyAccess = true;

        var progress = await rig.Dispatcher().AdvanceAsync(BatchRig.Job(), "r1", null, null, allowSubmit: true, allowance: null, default);

        Assert.Equal(RunPhase.Pending, progress.Phase);
        Assert.Equal(AwsBatchReasons.Rejected, progress.Problem!.Reason);
        Assert.False(progress.Problem.Fatal);
        Assert.Contains("AccessDeniedException", progress.Problem.Message, StringComparison.Ordinal);
        Assert.Contains("not authorized to perform: batch:DescribeJobDefinitions", progress.Problem.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromMinutes(5), progress.PollAfter);
        Assert.Empty(rig.Server.Jobs);
    }

    [Fact]
    public async Task An_unknown_queue_blocks_the_run_naming_the_queue()
    {
        await using var rig = await BatchRig.StartAsync();

        var progress = await rig.Dispatcher(rig.Options(o => new AwsBatchOptions
        {
            Enabled = true, JobQueue = "nope", ExecutionRoleArn = o.ExecutionRoleArn, DefaultResultsUri = o.DefaultResultsUri,
        })).AdvanceAsync(BatchRig.Job(), "r1", null, null, allowSubmit: true, allowance: null, default);

        Assert.Equal(AwsBatchReasons.Rejected, progress.Problem!.Reason);
        Assert.Contains("JobQueue nope not found", progress.Problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_settings_block_the_run_naming_each()
    {
        await using var rig = await BatchRig.StartAsync();

        var progress = await rig.Dispatcher(new AwsBatchOptions { Enabled = true, DefaultResultsUri = rig.Store })
            .AdvanceAsync(BatchRig.Job(), "r1", null, null, allowSubmit: true, allowance: null, default);

        Assert.Equal(AwsBatchReasons.NotConfigured, progress.Problem!.Reason);
        Assert.Contains("BatchRunner:AwsBatch:JobQueue", progress.Problem.Message, StringComparison.Ordinal);
        Assert.Contains("BatchRunner:AwsBatch:ExecutionRoleArn", progress.Problem.Message, StringComparison.Ordinal);
        Assert.Empty(rig.Server.Calls);
    }

    [Fact]
    public async Task Resources_no_fargate_size_holds_fail_the_run_listing_the_sizes()
    {
        await using var rig = await BatchRig.StartAsync();

        var progress = await rig.Dispatcher().AdvanceAsync(BatchRig.Job(extra: "  resources: {cpu: \"32\", memory: 8Gi}"), "r1", null, null, allowSubmit: true, allowance: null, default);

        Assert.Equal(RunPhase.Failed, progress.Phase);
        Assert.Equal(AwsBatchReasons.InvalidResources, progress.Problem!.Reason);
        Assert.Contains("no task size with 32 vCPU and 8192 MiB", progress.Problem.Message, StringComparison.Ordinal);
        Assert.Contains("16 vCPU with 32768-122880 MiB in steps of 8192", progress.Problem.Message, StringComparison.Ordinal);
        Assert.Empty(rig.Server.Calls);
    }

    [Fact]
    public async Task A_run_without_a_results_store_is_blocked()
    {
        await using var rig = await BatchRig.StartAsync();

        var progress = await rig.Dispatcher(rig.Options(o => new AwsBatchOptions { Enabled = true, JobQueue = o.JobQueue, ExecutionRoleArn = o.ExecutionRoleArn }))
            .AdvanceAsync(BatchRig.Job(), "r1", null, null, allowSubmit: true, allowance: null, default);

        Assert.Equal(AwsBatchReasons.NoResultsStore, progress.Problem!.Reason);
        Assert.Contains("spec.results.uri", progress.Problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Spot_capacity_goes_to_the_spot_queue_and_is_blocked_without_one()
    {
        await using var rig = await BatchRig.StartAsync();
        var job = BatchRig.Job(metadata: ", annotations: {batchrunner.io/capacity: spot}");

        await BatchRig.RunToEndAsync(rig.Dispatcher(), job);
        var blocked = await rig.Dispatcher(rig.Options(o => new AwsBatchOptions
        {
            Enabled = true, JobQueue = o.JobQueue, ExecutionRoleArn = o.ExecutionRoleArn, DefaultResultsUri = o.DefaultResultsUri,
        })).AdvanceAsync(BatchRig.Job("other", metadata: ", annotations: {batchrunner.io/capacity: spot}"), "r2", null, null, allowSubmit: true, allowance: null, default);

        Assert.Equal(BatchRig.SpotQueue, Assert.Single(rig.Server.Jobs).Queue);
        Assert.Contains("SpotJobQueue", blocked.Problem!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_share_identifier_goes_with_each_submission()
    {
        await using var rig = await BatchRig.StartAsync();

        await BatchRig.RunToEndAsync(rig.Dispatcher(rig.Options(o => new AwsBatchOptions
        {
            Enabled = true, JobQueue = o.JobQueue, ExecutionRoleArn = o.ExecutionRoleArn, DefaultResultsUri = o.DefaultResultsUri, ShareIdentifier = "teamA",
        })), BatchRig.Job());

        Assert.Equal("teamA", (string?)Assert.Single(rig.Server.Jobs).Request["shareIdentifier"]);
    }

    [Fact]
    public async Task On_a_fair_share_queue_each_namespace_is_its_own_share_and_the_priority_goes_as_scheduling_priority()
    {
        await using var rig = await BatchRig.StartAsync();
        var dispatcher = rig.Dispatcher(rig.Options(o => new AwsBatchOptions
        {
            Enabled = true, JobQueue = o.JobQueue, ExecutionRoleArn = o.ExecutionRoleArn, DefaultResultsUri = o.DefaultResultsUri, ShareIdentifier = "ignored",
            FairShareByNamespace = true,
        }));

        await BatchRig.RunToEndAsync(dispatcher, BatchRig.Job(extra: "  priority: high"));
        await BatchRig.RunToEndAsync(dispatcher, BatchRig.Job(name: "urgent", extra: "  priority: 20000"));

        var requests = rig.Server.Jobs.Select(j => j.Request).ToList();
        Assert.All(requests, r => Assert.Equal("team_a", (string?)r["shareIdentifier"]));
        Assert.Equal([5100, 9999], requests.Select(r => (int)r["schedulingPriorityOverride"]!));
    }

    [Theory]
    [InlineData("team-a", "team_a")]
    [InlineData("a.b-c", "a_b_c")]
    public void A_namespace_becomes_a_share_identifier_of_letters_digits_and_underscores(string ns, string expected) =>
        Assert.Equal(expected, AwsFairShare.ShareIdentifierOf(ns));

    [Fact]
    public async Task Cancelling_terminates_every_array_of_the_run_also_one_submitted_but_not_recorded()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.AdvanceOnDescribe = false;
        var job = BatchRig.Job(extra: "  completions: 30\n  parallelism: 12");
        var runId = RunIdentity.For(job);
        var dispatcher = rig.Dispatcher();
        var progress = await dispatcher.AdvanceAsync(job, runId, null, null, allowSubmit: true, allowance: null, default);
        var recorded = progress.State.Clone();
        recorded.Arrays.RemoveAt(2);

        var cancelled = await dispatcher.CancelAsync(job, job.Metadata.Name, runId, recorded, "BatchJob team-a/sweep deleted", default);

        Assert.Equal(RunPhase.Cancelled, cancelled.Phase);
        Assert.All(rig.Server.Jobs, j => Assert.Equal(["TerminateJob"], j.StoppedBy));
        Assert.All(rig.Server.Jobs, j => Assert.Equal("FAILED", j.Status));
        var again = await dispatcher.AdvanceAsync(job, runId, cancelled.State, null, allowSubmit: true, allowance: null, default);
        Assert.Equal(RunPhase.Cancelled, again.Phase);
        Assert.Equal(4, rig.Server.CallCount("SubmitJob"));
    }

    [Fact]
    public async Task A_run_past_its_deadline_is_terminated_and_failed()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.AdvanceOnDescribe = false;
        var job = BatchRig.Job(extra: "  completions: 4\n  parallelism: 4\n  deadlineSeconds: 600");
        var dispatcher = rig.Dispatcher();
        var started = await dispatcher.AdvanceAsync(job, RunIdentity.For(job), null, null, allowSubmit: true, allowance: null, default);
        Assert.True(started.PollAfter <= TimeSpan.FromSeconds(601));

        rig.Time.Advance(TimeSpan.FromSeconds(601));
        var ended = await dispatcher.AdvanceAsync(job, RunIdentity.For(job), started.State, null, allowSubmit: true, allowance: null, default);

        Assert.Equal(RunPhase.Failed, ended.Phase);
        Assert.Contains("deadlineSeconds", ended.FailureMessage, StringComparison.Ordinal);
        Assert.Equal(["TerminateJob"], Assert.Single(rig.Server.Jobs).StoppedBy);
    }

    [Fact]
    public async Task DescribeJobs_asks_for_at_most_one_hundred_jobs_per_call()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.AdvanceOnDescribe = false;
        var job = BatchRig.Job(extra: "  completions: 250\n  parallelism: 4");
        var dispatcher = rig.Dispatcher();
        var state = (await dispatcher.AdvanceAsync(job, RunIdentity.For(job), null, null, allowSubmit: true, allowance: null, default)).State;
        // As many open windows as a restarted controller could inherit: every index its own job.
        for (var index = state.NextIndex; index < 250; index++)
        {
            var submitted = await rig.Api.SubmitJobAsync(dispatcher.SubmitRequest(job, state.RunId!, state, AwsBatchDispatcher.JobName("sweep", state.RunId!, index), index, 1, rig.Store), default);
            state.Arrays.Add(new ArrayRecord { JobId = submitted.JobId, JobName = submitted.JobName, Start = index, Size = 1, SubmittedAt = rig.Time.GetUtcNow() });
        }

        state.NextIndex = 250;
        var before = rig.Server.CallCount("DescribeJobs");
        var progress = await dispatcher.AdvanceAsync(job, state.RunId!, state, null, allowSubmit: true, allowance: null, default);

        var describes = rig.Server.Bodies("DescribeJobs").Skip(before).Select(b => JsonNode.Parse(b)!["jobs"]!.AsArray().Count).ToList();
        Assert.Equal([100, 100, 50], describes);
        Assert.Equal(250, progress.State.Arrays.Count);
    }

    [Fact]
    public async Task Polling_slows_down_while_nothing_changes_and_speeds_up_on_change()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.AdvanceOnDescribe = false;
        var job = BatchRig.Job(extra: "  completions: 2\n  parallelism: 2");
        var dispatcher = rig.Dispatcher();
        var progress = await dispatcher.AdvanceAsync(job, RunIdentity.For(job), null, null, allowSubmit: true, allowance: null, default);
        var polls = new List<TimeSpan> { progress.PollAfter };
        for (var i = 0; i < 6; i++)
        {
            progress = await dispatcher.AdvanceAsync(job, RunIdentity.For(job), progress.State, null, allowSubmit: true, allowance: null, default);
            polls.Add(progress.PollAfter);
        }

        rig.Server.Advance();
        progress = await dispatcher.AdvanceAsync(job, RunIdentity.For(job), progress.State, null, allowSubmit: true, allowance: null, default);

        Assert.Equal([5, 10, 20, 40, 60, 60, 60], polls.Select(p => (int)p.TotalSeconds));
        Assert.Equal(TimeSpan.FromSeconds(5), progress.PollAfter);
    }
}
