using BatchRunner.Aws.Batch;
using BatchRunner.Cli;
using BatchRunner.Cli.Commands;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary><c>batchrunner run</c> of an aws-batch spec against the stub Batch endpoint: follow to the end, rerun, errors.</summary>
public sealed class CliAwsBatchRunTests
{
    private static readonly AwsBatchTimings Fast = new(TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(20), TimeSpan.FromMinutes(10));

    /// <summary><c>batchrunner run</c> as its command runs it, with the stub endpoint's client.</summary>
    private static Task<int> RunAsync(BatchJob job, string store, TextWriter stdout, TextWriter stderr, Func<string, string?> environment, IBatchApi api, CancellationToken cancellation) =>
        RunCommand.RunAsync(job, CliBackends.Create(store, environment, cancellation, api: api, timings: Fast), store, compact: false, stdout, stderr, cancellation);

    private static Func<string, string?> Environment(BatchRig rig, params (string Name, string Value)[] more)
    {
        var variables = new Dictionary<string, string>
        {
            ["BatchRunner__AwsBatch__JobQueue"] = BatchRig.Queue,
            ["BatchRunner__AwsBatch__ExecutionRoleArn"] = BatchRig.ExecutionRole,
            ["BatchRunner__Results__Uri"] = rig.Store,
        };
        foreach (var (name, value) in more)
        {
            variables[name] = value;
        }

        return name => variables.GetValueOrDefault(name);
    }

    [Fact]
    public async Task A_run_is_followed_to_the_end_and_a_rerun_submits_nothing_again()
    {
        await using var rig = await BatchRig.StartAsync();
        var job = BatchRig.Job(extra: "  completions: 5\n  parallelism: 5");
        var localStore = Path.Combine(rig.Store, "..", "local");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await RunAsync(job, localStore, stdout, stderr, Environment(rig), rig.Api, default);

        Assert.True(code == ExitCodes.Succeeded, stderr.ToString());
        var runId = RunIdentity.For(job);
        Assert.StartsWith($"sweep run {runId}: Succeeded, 5 of 5 indexes succeeded, 0 failed (AWS Batch queue batchrunner", stdout.ToString(), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(localStore, "aws-batch", "team-a", "sweep", runId + ".json")));
        Assert.Equal(1, rig.Server.CallCount("SubmitJob"));

        using var again = new StringWriter();
        Assert.Equal(ExitCodes.Succeeded, await RunAsync(job, localStore, again, stderr, Environment(rig), rig.Api, default));
        Assert.Equal(1, rig.Server.CallCount("SubmitJob"));
        Assert.Contains("Succeeded, 5 of 5", again.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_index_fails_the_run_with_its_reason_and_exit_code()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.ExitCode = (index, _) => index == 2 ? 42 : 0;
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await RunAsync(BatchRig.Job(extra: "  completions: 4\n  parallelism: 2"), Path.Combine(rig.Store, "..", "local"), stdout, stderr, Environment(rig), rig.Api, default);

        Assert.Equal(ExitCodes.JobFailed, code);
        Assert.Contains("Failed, 3 of 4 indexes succeeded, 1 failed", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("index 2 failed: Essential container in task exited (exit code 42)", stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rerun_failed_submits_one_array_over_exactly_the_failed_indexes_and_the_run_succeeds()
    {
        await using var rig = await BatchRig.StartAsync();
        var broken = true;
        rig.Server.ExitCode = (index, _) => broken && index is 3 or 17 or 18 ? 9 : 0;
        var job = BatchRig.Job(extra: "  completions: 20\n  parallelism: 20");
        var localStore = Path.Combine(rig.Store, "..", "local");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Assert.Equal(ExitCodes.JobFailed, await RunAsync(job, localStore, stdout, stderr, Environment(rig), rig.Api, default));
        Assert.Equal(1, rig.Server.CallCount("SubmitJob"));

        broken = false;
        var backends = CliBackends.Create(localStore, Environment(rig), default, api: rig.Api, timings: Fast);
        var code = await RerunCommand.RerunAsync("team-a", "sweep", null, new RerunCommand.RerunChoice(true, null, null), backends, localStore, compact: false, stdout, stderr, default);

        Assert.True(code == ExitCodes.Succeeded, stderr.ToString() + stdout);
        Assert.Contains("Rerunning 3 of 20 indexes of sweep run", stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("Succeeded, 20 of 20 indexes succeeded, 0 failed", stdout.ToString(), StringComparison.Ordinal);
        Assert.Equal(2, rig.Server.CallCount("SubmitJob"));
        var rerun = rig.Server.Jobs[1];
        Assert.Equal(($"sweep-{RunIdentity.For(job)}-r1-0", 3), (rerun.Name, rerun.Size));
        Assert.Equal([3, 17, 18], rerun.Listed!);
        Assert.Contains("""{"name":"BATCHRUNNER_ATTEMPT_NUMBERING","value":"store"}""", rerun.Request["containerOverrides"]!["environment"]!.ToJsonString(), StringComparison.Ordinal);

        // Followed again, the rerun it took is not submitted twice; a second rerun of a run without failures is refused.
        using var again = new StringWriter();
        Assert.Equal(ExitCodes.Succeeded, await RunAsync(job, localStore, again, stderr, Environment(rig), rig.Api, default));
        Assert.Equal(2, rig.Server.CallCount("SubmitJob"));
        Assert.Equal(ExitCodes.InvalidInput, await RerunCommand.RerunAsync("team-a", "sweep", null, new RerunCommand.RerunChoice(true, null, null), backends, localStore, false, stdout, stderr, default));
        Assert.Contains("has no failed indexes (Succeeded, 20 of 20 succeeded)", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_budget_stops_submitting_at_what_it_covers_counting_fargates_minute_and_the_run_ends_failed()
    {
        await using var rig = await BatchRig.StartAsync();
        // 1 vCPU at $36 an hour is a cent a second. The indexes take no time on the stub, but Fargate bills a minute
        // each: $0.60 an index, so $1.90 covers 3 of 6 (priced by the seconds they took, all 6 would have gone).
        var job = BatchRig.Job(extra: "  completions: 6\n  parallelism: 6\n  timeoutSeconds: 10\n  resources: {cpu: '1', memory: 2Gi}\n  budget: {usd: 1.9}");
        var prices = new BatchRunner.Core.Costs.PriceTable(new Dictionary<string, BatchRunner.Core.Costs.Price>(StringComparer.Ordinal) { ["aws-batch"] = new(36, 0) });
        var localStore = Path.Combine(rig.Store, "..", "local");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await RunCommand.RunAsync(
            job, CliBackends.Create(localStore, Environment(rig), default, api: rig.Api, timings: Fast), localStore, compact: false, stdout, stderr, default, prices: prices);

        Assert.True(code == ExitCodes.JobFailed, stderr.ToString() + stdout);
        Assert.True(3 == rig.Server.Jobs.Sum(j => j.Size), stdout.ToString() + stderr + string.Join("; ", rig.Server.Jobs.Select(j => $"{j.Name} {j.Size}")));
        Assert.Contains("3 of 6 indexes succeeded", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("would pass the budget of $1.90: it covers 3, so 3 will not start", stdout.ToString() + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_settings_are_named_as_environment_variables()
    {
        await using var rig = await BatchRig.StartAsync();
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await RunAsync(BatchRig.Job(), rig.Store, stdout, stderr, _ => null, rig.Api, default);

        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains("BatchRunner__AwsBatch__JobQueue", stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("BatchRunner__AwsBatch__ExecutionRoleArn", stderr.ToString(), StringComparison.Ordinal);
        Assert.Empty(rig.Server.Calls);
    }

    [Fact]
    public async Task Aws_refusing_the_run_ends_it_with_the_aws_message()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.DenyAccess = true;
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await RunAsync(BatchRig.Job(), rig.Store, stdout, stderr, Environment(rig), rig.Api, default);

        Assert.Equal(ExitCodes.JobFailed, code);
        Assert.Contains("AccessDeniedException", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ctrl_c_stops_following_and_leaves_the_run_to_aws_batch()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.AdvanceOnDescribe = false;
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        using var cancel = new CancellationTokenSource();

        var run = RunAsync(BatchRig.Job(extra: "  completions: 3\n  parallelism: 3"), rig.Store, stdout, stderr, Environment(rig), rig.Api, cancel.Token);
        await Support.Eventually.WaitAsync(() => rig.Server.Jobs.Count == 1, "the array was submitted");
        await cancel.CancelAsync();

        Assert.Equal(ExitCodes.Cancelled, await run);
        Assert.Contains("goes on in aws-batch", stderr.ToString(), StringComparison.Ordinal);
        Assert.Empty(rig.Server.Jobs[0].StoppedBy);
    }
}

/// <summary>The whole command line, configured only by the environment: endpoint variable, default credential chain.</summary>
[Collection(nameof(ProcessEnvironment))]
public sealed class CliAwsBatchEnvironmentTests
{
    [Fact]
    public async Task Batchrunner_run_of_an_aws_batch_spec_reaches_the_endpoint_named_by_aws_endpoint_url_batch()
    {
        await using var rig = await BatchRig.StartAsync();
        var spec = Path.Combine(rig.Store, "..", "spec.yaml");
        Directory.CreateDirectory(rig.Store);
        await File.WriteAllTextAsync(spec, """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: from-cli}
            spec:
              image: registry.example/sim:1
              command: [python, sim.py]
              completions: 3
              parallelism: 3
              backend: aws-batch
            """);
        var variables = new Dictionary<string, string?>
        {
            ["AWS_ENDPOINT_URL_BATCH"] = rig.Server.Url.ToString(),
            ["BatchRunner__AwsBatch__JobQueue"] = BatchRig.Queue,
            ["BatchRunner__AwsBatch__ExecutionRoleArn"] = BatchRig.ExecutionRole,
            ["BatchRunner__AwsBatch__PollSeconds"] = "0.02",
            ["BatchRunner__AwsBatch__MaxPollSeconds"] = "0.05",
            ["BatchRunner__Results__Uri"] = rig.Store,
        };
        foreach (var (name, value) in variables)
        {
            System.Environment.SetEnvironmentVariable(name, value);
        }

        try
        {
            using var stdout = new StringWriter();
            using var stderr = new StringWriter();
            var code = await CliApplication.RunAsync(["run", spec, "--store", Path.Combine(rig.Store, "..", "local")], stdout, stderr);

            Assert.True(code == ExitCodes.Succeeded, stderr.ToString());
            Assert.Contains("from-cli run r", stdout.ToString(), StringComparison.Ordinal);
            Assert.Equal(3, Assert.Single(rig.Server.Jobs).Size);
        }
        finally
        {
            foreach (var name in variables.Keys)
            {
                System.Environment.SetEnvironmentVariable(name, null);
            }
        }
    }
}

/// <summary><c>batchrunner run</c> with a backend the CLI does not ship, added as any backend is added.</summary>
public sealed class CliRegisteredBackendTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("br-registered-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Batchrunner_run_follows_a_registered_backend_to_the_end_and_keeps_its_state_beside_the_store()
    {
        var spec = Path.Combine(_folder, "spec.yaml");
        await File.WriteAllTextAsync(spec, """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: beamed}
            spec:
              image: registry.example/sim:1
              command: [python, sim.py]
              completions: 3
              parallelism: 3
              backend: teleport
              env: [{name: FAIL, value: "2"}]
            """);
        var teleport = new Support.TeleportBackend();
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await CliApplication.RunAsync(["run", spec, "--store", Path.Combine(_folder, "store")], stdout, stderr, [teleport]);

        Assert.True(code == ExitCodes.JobFailed, stderr.ToString());
        var runId = Assert.Single(teleport.Advanced.Select(r => r.RunId).Distinct());
        Assert.StartsWith($"beamed run {runId}: Failed, 2 of 3 indexes succeeded, 1 failed (teleported)", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("  index 2 failed after 1 attempt(s): lost in transit", stdout.ToString(), StringComparison.Ordinal);
        // Its state was kept beside the store and handed back on the next call.
        Assert.True(File.Exists(Path.Combine(_folder, "store", "teleport", "default", "beamed", runId + ".json")));
        Assert.Equal(3, teleport.Advanced.Last().State!.Value.GetProperty("submitted").GetInt32());
    }

    [Fact]
    public async Task Batchrunner_run_refuses_a_backend_it_does_not_have_naming_spec_backend_and_its_backends()
    {
        var spec = Path.Combine(_folder, "spec.yaml");
        await File.WriteAllTextAsync(spec, """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: lost}
            spec: {image: "registry.example/sim:1", command: [python], backend: slurm}
            """);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = await CliApplication.RunAsync(["run", spec, "--store", Path.Combine(_folder, "store")], stdout, stderr);

        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains("spec.backend: slurm is not a backend of the batchrunner CLI (backends here: local", stderr.ToString(), StringComparison.Ordinal);
        Assert.Empty(stdout.ToString());
    }
}
