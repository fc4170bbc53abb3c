using System.Text.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Core.Sweeps;
using BatchRunner.Exec;
using BatchRunner.Local.Query;
using BatchRunner.Store;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Results.Tests;

/// <summary>batchrunner-exec run as a process, as a pod or an AWS Batch job runs it, against a local store and against S3.</summary>
public sealed class WrapperTests : IDisposable
{
    private const string Script =
        "echo \"{\\\"index\\\": $BATCHRUNNER_INDEX, \\\"seed\\\": $BATCHRUNNER_SEED, \\\"params\\\": $BATCHRUNNER_PARAMS, \\\"repeat\\\": $BATCHRUNNER_REPEAT, \\\"job\\\": \\\"$BATCHRUNNER_JOB\\\", \\\"run\\\": \\\"$BATCHRUNNER_RUN_ID\\\"}\" > \"$BATCHRUNNER_OUTPUT_DIR/env.jsonl\"; " +
        "echo to-stdout; echo to-stderr >&2; " +
        "if [ \"$BATCHRUNNER_INDEX\" = 1 ]; then exit 3; fi";

    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Against_a_local_store_each_index_gets_the_plans_parameters_and_seed_and_its_exit_code_is_kept()
    {
        var job = Wrapper.Job(Script, "sweep: {grid: {b: [x, y], a: [1, 2]}, repeats: 2, seed: 42}");
        var spec = WriteSpec(job);
        var store = _temp.Sub("store");
        var plan = new SweepPlan(job.Spec);
        var runId = RunIdentity.For(job);

        for (var index = 0; index < 3; index++)
        {
            var result = await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), new Dictionary<string, string> { ["JOB_COMPLETION_INDEX"] = $"{index}" });

            Assert.Equal(index == 1 ? 3 : 0, result.ExitCode);
            Assert.Contains("to-stdout", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("to-stderr", result.Stderr, StringComparison.Ordinal);
            var row = Ledger(store, job.Metadata.Name, runId, index, 1);
            var expected = plan.For(index);
            Assert.Equal((expected.Seed, expected.Repeat, expected.ParamsJson), (row.Seed, row.Repeat, row.Params.GetRawText()));
            Assert.Equal((index == 1 ? "failed" : "succeeded", index == 1 ? 3 : 0, 1L, 1L), (row.Status, row.ExitCode, row.OutputRows, (long)row.OutputFiles));
            using var written = JsonDocument.Parse(File.ReadAllText(Path.Combine(store, StoreLayout.OutputPrefix(job.Metadata.Name, runId, index, 1), "env.jsonl")));
            Assert.Equal(expected.Seed, written.RootElement.GetProperty("seed").GetInt64());
            Assert.Equal(expected.ParamsJson, written.RootElement.GetProperty("params").GetRawText());
            Assert.Equal(runId, written.RootElement.GetProperty("run").GetString());
            Assert.Contains("to-stdout", File.ReadAllText(Path.Combine(store, StoreLayout.AttemptPrefix(job.Metadata.Name, runId, index, 1), "logs", "stdout.txt")), StringComparison.Ordinal);
        }

        Assert.Equal("exit code 3: to-stderr", Ledger(store, job.Metadata.Name, runId, 1, 1).Reason);
    }

    [Fact]
    public async Task A_failure_nobody_foresaw_is_said_in_full_and_ends_the_attempt_with_the_wrappers_own_exit_code()
    {
        var job = Wrapper.Job("exit 0");
        var spec = WriteSpec(job);
        var said = new List<Serilog.Events.LogEvent>();
        using var log = new Serilog.LoggerConfiguration().WriteTo.Sink(new ListSink(said)).CreateLogger();
        // An environment that throws as no caller expects stands in for a library's bug (the SDK once threw ArgumentException mid-upload).
        var wrapper = new ResultsWrapper(name => name == "BATCHRUNNER_INDEX" ? throw new InvalidOperationException("a library's bug") : null, log, TimeProvider.System);

        var exitCode = await wrapper.RunAsync(Wrapper.Arguments(spec, _temp.Sub("store"), job), CancellationToken.None);

        Assert.Equal(ResultsWrapper.WrapperError, exitCode);
        var error = Assert.Single(said, e => e.Level == Serilog.Events.LogEventLevel.Error);
        Assert.Equal("batchrunner-exec: unexpected failure: \"a library's bug\"", error.RenderMessage());
        Assert.IsType<InvalidOperationException>(error.Exception);
    }

    private sealed class ListSink(List<Serilog.Events.LogEvent> events) : Serilog.Core.ILogEventSink
    {
        public void Emit(Serilog.Events.LogEvent logEvent) => events.Add(logEvent);
    }

    [Fact]
    public async Task A_retried_index_gets_the_next_attempt_folder_and_the_failed_attempts_partial_output_stays_in_its_own()
    {
        var job = Wrapper.Job("if [ -f \"$MARK\" ]; then echo '{\"v\": \"good\"}' > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"; exit 0; fi; touch \"$MARK\"; echo '{\"v\": \"partial\"}' > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"; exit 1");
        var spec = WriteSpec(job);
        var store = _temp.Sub("store");
        var environment = new Dictionary<string, string> { ["BATCHRUNNER_INDEX"] = "0", ["MARK"] = Path.Combine(_temp.Path, "mark") };
        var runId = RunIdentity.For(job);

        Assert.Equal(1, (await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), environment)).ExitCode);
        Assert.Equal(0, (await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), environment)).ExitCode);

        string Output(int attempt) => File.ReadAllText(Path.Combine(store, StoreLayout.OutputPrefix("job", runId, 0, attempt), "r.jsonl")).Trim();
        Assert.Equal(("{\"v\": \"partial\"}", "{\"v\": \"good\"}"), (Output(1), Output(2)));
        Assert.Equal(("failed", "succeeded"), (Ledger(store, "job", runId, 0, 1).Status, Ledger(store, "job", runId, 0, 2).Status));
    }

    [Fact]
    public async Task Against_s3_it_reads_the_spec_from_s3_takes_the_aws_batch_index_and_attempt_and_streams_a_large_output()
    {
        var (store, uri) = await S3Server.Shared.NewStoreAsync();
        // 12 MiB of rows: above the 5 MiB part size the wrapper is given, so it goes up in three parts.
        var job = Wrapper.Job(
            "i=0; while [ $i -lt 12 ]; do head -c 1048000 /dev/zero | tr '\\0' 'x' | sed 's/.*/{\"pad\": \"&\"}/'; echo; i=$((i+1)); done > \"$BATCHRUNNER_OUTPUT_DIR/big.jsonl\"",
            "completions: 30\nbackend: aws-batch\nimage: img");
        var runId = RunIdentity.For(job);
        await store.PutBytesAsync(StoreLayout.SpecKey("job", runId), System.Text.Encoding.UTF8.GetBytes(RunIdentity.SpecJson(job)), CancellationToken.None);
        var environment = S3Server.Shared.Environment();
        environment["AWS_BATCH_JOB_ARRAY_INDEX"] = "3";
        environment["BATCHRUNNER_INDEX_OFFSET"] = "20";
        environment["AWS_BATCH_JOB_ATTEMPT"] = "2";

        var result = await Wrapper.RunAsync(Wrapper.Arguments($"{uri}/{StoreLayout.SpecKey("job", runId)}", uri, job), environment);

        Assert.True(result.ExitCode == 0, result.Stderr);
        var row = LedgerRow.FromJson((await store.GetBytesAsync(StoreLayout.LedgerKey("job", runId, 23, 2), CancellationToken.None))!);
        Assert.Equal(("succeeded", "aws-batch", 12L, 1), (row.Status, row.Backend, row.OutputRows!.Value, row.OutputFiles));
        // Billed as Fargate bills it: the task size of the default requests (1 vCPU, 2 GiB), a minute at least, on-demand.
        Assert.Equal((60.0, 120.0, "on-demand"), (row.BilledVcpuSeconds, row.BilledGibSeconds, row.Capacity));
        Assert.True(row.VcpuSeconds < row.BilledVcpuSeconds);
        var uploaded = await store.GetBytesAsync($"{StoreLayout.OutputPrefix("job", runId, 23, 2)}/big.jsonl", CancellationToken.None);
        Assert.Equal(row.OutputBytes, uploaded!.LongLength);
        Assert.Equal(12 * 1_048_012L, uploaded.LongLength);
        var (bucket, key) = StoreUri.ParseObject($"{uri}/{StoreLayout.OutputPrefix("job", runId, 23, 2)}/big.jsonl");
        using var client = S3Server.Shared.Client();
        Assert.EndsWith("-3\"", (await client.GetObjectMetadataAsync(bucket, key)).ETag, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("AWS_BATCH_JOB_ARRAY_INDEX")]
    [InlineData("JOB_COMPLETION_INDEX")]
    public async Task A_reruns_child_runs_the_listed_index_at_its_position_as_the_attempt_after_those_stored(string position)
    {
        var job = Wrapper.Job("echo \"{\\\"index\\\": $BATCHRUNNER_INDEX}\" > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"", "completions: 10");
        var spec = WriteSpec(job);
        var store = _temp.Sub("store");
        var runId = RunIdentity.For(job);
        Assert.Equal(0, (await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), new Dictionary<string, string> { ["BATCHRUNNER_INDEX"] = "7" })).ExitCode);

        var result = await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), new Dictionary<string, string>
        {
            ["BATCHRUNNER_INDEXES"] = "2,7-8",
            [position] = "1",
            ["AWS_BATCH_JOB_ATTEMPT"] = "1",
            ["BATCHRUNNER_ATTEMPT_NUMBERING"] = "store",
        });

        Assert.True(result.ExitCode == 0, result.Stderr);
        var row = Ledger(store, "job", runId, 7, 2);
        Assert.Equal(("succeeded", 1L), (row.Status, row.OutputRows));
        Assert.Equal("{\"index\": 7}", File.ReadAllText(Path.Combine(store, StoreLayout.OutputPrefix("job", runId, 7, 2), "r.jsonl")).Trim());

        var beyond = await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), new Dictionary<string, string> { ["BATCHRUNNER_INDEXES"] = "2,7-8", [position] = "3" });
        Assert.Equal(ResultsWrapper.WrapperError, beyond.ExitCode);
        Assert.Contains("index 3 of BATCHRUNNER_INDEXES is out of range: it lists 3 indexes", beyond.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_split_across_backends_names_each_attempts_backend_and_its_tables_hold_each_index_once()
    {
        var job = Wrapper.Job("echo \"{\\\"value\\\": $BATCHRUNNER_INDEX}\" > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"", "completions: 6");
        var spec = WriteSpec(job);
        var store = _temp.Sub("store");

        // Indexes 0-2 as a Kubernetes Job over its part (completion i runs the i-th), 3-5 as an AWS Batch array from 3.
        for (var position = 0; position < 3; position++)
        {
            var kubernetes = await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), new Dictionary<string, string>
            {
                ["BATCHRUNNER_INDEXES"] = "0-2", ["JOB_COMPLETION_INDEX"] = $"{position}", ["BATCHRUNNER_BACKEND"] = "kubernetes",
            });
            var aws = await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), new Dictionary<string, string>
            {
                ["AWS_BATCH_JOB_ARRAY_INDEX"] = $"{position}", ["BATCHRUNNER_INDEX_OFFSET"] = "3", ["BATCHRUNNER_BACKEND"] = "aws-batch",
            });
            Assert.True(kubernetes.ExitCode == 0 && aws.ExitCode == 0, kubernetes.Stderr + aws.Stderr);
        }

        // A late second success of index 4 is recorded, and the tables still hold index 4 once; a backend name that is
        // no backend is not written into the ledger.
        var late = await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), new Dictionary<string, string> { ["BATCHRUNNER_INDEX"] = "4", ["BATCHRUNNER_BACKEND"] = "../../etc" });
        Assert.True(late.ExitCode == 0, late.Stderr);

        using var engine = ResultsQueryEngine.Open(store);
        Assert.Equal(
            [(0L, 1L, "kubernetes"), (1L, 1L, "kubernetes"), (2L, 1L, "kubernetes"), (3L, 1L, "aws-batch"), (4L, 1L, "aws-batch"), (4L, 2L, job.Spec.Backend.Name), (5L, 1L, "aws-batch")],
            engine.Execute("SELECT \"index\", attempt, backend FROM indexes ORDER BY \"index\", attempt").Rows.Select(r => ((long)r[0]!, (long)r[1]!, (string)r[2]!)));
        Assert.Equal([0L, 1L, 2L, 3L, 4L, 5L], engine.Execute("SELECT value FROM results ORDER BY \"index\"").Rows.Select(r => (long)r[0]!));
    }

    [Fact]
    public async Task Logs_of_an_s3_store_print_what_the_wrapper_uploaded_and_say_what_is_not_there()
    {
        var (store, uri) = await S3Server.Shared.NewStoreAsync("logs");
        var job = Wrapper.Job("[ $BATCHRUNNER_INDEX = 1 ] && exit 0; echo \"out $BATCHRUNNER_INDEX\"; echo \"err $BATCHRUNNER_INDEX\" >&2", "completions: 3\nbackend: aws-batch\nimage: img");
        var runId = RunIdentity.For(job);
        await store.PutBytesAsync(StoreLayout.SpecKey("job", runId), System.Text.Encoding.UTF8.GetBytes(RunIdentity.SpecJson(job)), CancellationToken.None);
        var environment = S3Server.Shared.Environment();
        foreach (var index in new[] { 0, 1 })
        {
            environment["BATCHRUNNER_INDEX"] = $"{index}";
            var ran = await Wrapper.RunAsync(Wrapper.Arguments($"{uri}/{StoreLayout.SpecKey("job", runId)}", uri, job), environment);
            Assert.True(ran.ExitCode == 0, ran.Stderr);
        }

        environment.Remove("BATCHRUNNER_INDEX");
        async Task<CliProcess.Result> LogsAsync(params string[] args) => await CliProcess.RunAsync(["logs", "job", "--results", uri, .. args], environment);

        var both = await LogsAsync("--index", "0");
        var stderr = await LogsAsync("--index", "0", "--stderr");
        var quiet = await LogsAsync("--index", "1");
        var never = await LogsAsync("--index", "2");
        var followed = await LogsAsync("--index", "0", "--follow");

        // The wrapper keeps the child's standard output and error together (read through two pipes, so their lines
        // may interleave either way).
        Assert.True(both.ExitCode == 0, both.ToString());
        Assert.Equal(["err 0", "out 0"], both.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Equal(0, stderr.ExitCode);
        Assert.Contains("wrote nothing to standard error (an empty log is not kept); the results wrapper keeps standard error with standard output (leave out --stderr)", stderr.Stderr, StringComparison.Ordinal);
        Assert.Contains($"job run {runId} index 1 attempt 1 wrote nothing to standard output", quiet.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, never.ExitCode);
        Assert.Contains($"job run {runId} index 2 has not run: no attempt of it in {uri}", never.Stderr, StringComparison.Ordinal);
        Assert.Equal((0, both.Stdout), (followed.ExitCode, followed.Stdout));
        Assert.Contains("--follow follows attempts of the local store", followed.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_cost_of_fargate_attempts_is_their_billed_task_size_at_the_spot_or_on_demand_price()
    {
        var store = _temp.Sub("store");
        foreach (var (name, metadata) in new[] { ("ondemand", ""), ("spotty", "annotations: {batchrunner.io/capacity: spot}") })
        {
            var job = BatchRunner.Core.Spec.BatchJobParser.Parse($$"""
                apiVersion: batchrunner.io/v1alpha1
                kind: BatchJob
                metadata:
                  name: {{name}}
                  {{metadata}}
                spec:
                  command: ["/bin/true"]
                  completions: 2
                  backend: aws-batch
                  image: img
                  resources: {cpu: 300m, memory: 700Mi}
                """).GetJobOrThrow();
            var spec = WriteSpec(job);
            foreach (var index in new[] { "0", "1" })
            {
                var ran = await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), new Dictionary<string, string> { ["BATCHRUNNER_INDEX"] = index, ["BATCHRUNNER_BACKEND"] = "aws-batch" });
                Assert.True(ran.ExitCode == 0, ran.Stderr);
            }
        }

        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var onDemand = await BatchRunner.Cli.CliApplication.RunAsync(["cost", "ondemand", "--results", store, "--by", "backend"], stdout, stderr);
        var spot = await BatchRunner.Cli.CliApplication.RunAsync(["cost", "spotty", "--results", store, "--by", "backend"], stdout, stderr);

        // Each attempt: 0.5 vCPU and 1 GiB (the size holding 300m and 700Mi) for a minute, the least Fargate bills.
        var perAttempt = (0.5 * 60 * 0.04048 + 1.0 * 60 * 0.004445) / 3600;
        Assert.Equal((0, 0), (onDemand, spot));
        var text = stdout.ToString();
        Assert.Matches(@"(?m)^aws-batch\s+on-demand\s+2\s+0\.016667\s+0\.033333\s+" + (2 * perAttempt).ToString("0.######", System.Globalization.CultureInfo.InvariantCulture).Replace(".", "\\.", StringComparison.Ordinal), text);
        Assert.Matches(@"(?m)^aws-batch\s+spot\s+2\s+0\.016667\s+0\.033333\s+" + (2 * perAttempt * 0.3).ToString("0.######", System.Globalization.CultureInfo.InvariantCulture).Replace(".", "\\.", StringComparison.Ordinal), text);
    }

    [Fact]
    public async Task Against_s3_without_a_given_attempt_the_next_free_attempt_is_used()
    {
        var (store, uri) = await S3Server.Shared.NewStoreAsync();
        var job = Wrapper.Job("echo '{\"ok\": true}' > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"", "completions: 2");
        var spec = WriteSpec(job);
        var environment = S3Server.Shared.Environment();
        environment["BATCHRUNNER_INDEX"] = "1";
        var runId = RunIdentity.For(job);

        await Wrapper.RunAsync(Wrapper.Arguments(spec, uri, job), environment);
        await Wrapper.RunAsync(Wrapper.Arguments(spec, uri, job), environment);

        Assert.Equal(3, await ResultsWrapper.NextAttemptAsync(store, "job", runId, 1, CancellationToken.None));
        Assert.Equal(1, await ResultsWrapper.NextAttemptAsync(store, "job", runId, 0, CancellationToken.None));
    }

    [Fact]
    public async Task Sigterm_is_passed_to_the_command_and_what_it_wrote_is_still_uploaded()
    {
        var started = Path.Combine(_temp.Path, "started");
        var job = Wrapper.Job(
            $"trap 'echo \"{{\\\"stopped\\\": true}}\" > \"$BATCHRUNNER_OUTPUT_DIR/partial.jsonl\"; exit 143' TERM; touch {started}; while true; do sleep 0.1; done");
        var spec = WriteSpec(job);
        var store = _temp.Sub("store");

        using var process = Wrapper.Start(Wrapper.Arguments(spec, store, job), new Dictionary<string, string> { ["BATCHRUNNER_INDEX"] = "0" });
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!File.Exists(started) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.True(File.Exists(started), "the command never started");
        Assert.Equal(0, Signal.Send(process.Id, Signal.Term));
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);

        Assert.Equal(143, process.ExitCode);
        var row = Ledger(store, "job", RunIdentity.For(job), 0, 1);
        Assert.Equal(("interrupted", 143, 1L), (row.Status, row.ExitCode, row.OutputRows!.Value));
        Assert.True(File.Exists(Path.Combine(store, StoreLayout.OutputPrefix("job", RunIdentity.For(job), 0, 1), "partial.jsonl")));
    }

    [Fact]
    public async Task A_run_of_one_index_needs_no_index_variable_as_in_a_Job_on_a_cluster_without_Indexed_Jobs()
    {
        var job = Wrapper.Job("true");
        var store = _temp.Sub("store");

        var result = await Wrapper.RunAsync(["--spec", WriteSpec(job), "--store", store, "--", "true"], new Dictionary<string, string>());

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("succeeded", Ledger(store, "job", RunIdentity.For(job), 0, 1).Status);
    }

    [Fact]
    public async Task A_command_that_does_not_exist_exits_127_with_a_ledger_row_saying_so()
    {
        var job = Wrapper.Job("true");
        var store = _temp.Sub("store");

        var result = await Wrapper.RunAsync(["--spec", WriteSpec(job), "--store", store, "--", "/no/such/program"], new Dictionary<string, string> { ["BATCHRUNNER_INDEX"] = "0" });

        Assert.Equal(127, result.ExitCode);
        var row = Ledger(store, "job", RunIdentity.For(job), 0, 1);
        Assert.Equal("failed_to_start", row.Status);
        Assert.StartsWith("could not start \"/no/such/program\"", row.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new string[] { "--store", "x", "--", "true" }, "", "missing --spec")]
    [InlineData(new string[] { "--spec", "s", "--store", "x" }, "", "missing a command after --")]
    [InlineData(new string[] { "--spec", "SPEC", "--store", "STORE", "--", "true" }, "", "no index: set BATCHRUNNER_INDEX")]
    [InlineData(new string[] { "--spec", "SPEC", "--store", "STORE", "--", "true" }, "7", "index 7 is out of range: the job has 2 indexes (0 to 1)")]
    [InlineData(new string[] { "--spec", "SPEC", "--store", "STORE", "--", "true" }, "x", "BATCHRUNNER_INDEX: expected a whole number from 0, got \"x\"")]
    [InlineData(new string[] { "--bogus", "--", "true" }, "", "--bogus: unknown option")]
    public async Task Bad_arguments_or_environment_exit_125_naming_what_is_wrong(string[] arguments, string index, string error)
    {
        var spec = WriteSpec(Wrapper.Job("true", "completions: 2"));
        var store = _temp.Sub("store");
        var environment = index.Length > 0 ? new Dictionary<string, string> { ["BATCHRUNNER_INDEX"] = index } : [];

        var result = await Wrapper.RunAsync(arguments.Select(a => a == "SPEC" ? spec : a == "STORE" ? store : a), environment);

        Assert.Equal(ResultsWrapper.WrapperError, result.ExitCode);
        Assert.Contains(error, result.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Install_copies_the_executable_itself_where_an_init_container_is_told_to()
    {
        var destination = Path.Combine(_temp.Path, "shared", "batchrunner-exec");
        var apphost = Path.Combine(AppContext.BaseDirectory, "batchrunner-exec");
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(apphost, ["--install", destination]) { RedirectStandardError = true })!;
        await process.WaitForExitAsync();

        Assert.Equal(0, process.ExitCode);
        Assert.Equal(await File.ReadAllBytesAsync(apphost), await File.ReadAllBytesAsync(destination));
        Assert.True(OperatingSystem.IsWindows() || File.GetUnixFileMode(destination).HasFlag(UnixFileMode.OtherExecute));
    }

    private string WriteSpec(BatchRunner.Core.Spec.BatchJob job)
    {
        var path = Path.Combine(_temp.Path, $"spec-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, RunIdentity.SpecJson(job));
        return path;
    }

    internal static LedgerRow Ledger(string store, string job, string runId, int index, int attempt) =>
        new LocalResultsStore(store).ReadLedgerRow(job, runId, index, attempt) ?? throw new Xunit.Sdk.XunitException($"no ledger row for index {index} attempt {attempt}");
}

/// <summary>kill(2), to signal the wrapper as the kubelet does.</summary>
internal static partial class Signal
{
    public const int Term = 15;

    public static int Send(int pid, int signal) => Kill(pid, signal);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
