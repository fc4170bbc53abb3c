using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Results.Tests.Support;
using BatchRunner.Store;

namespace BatchRunner.Results.Tests;

/// <summary>
/// Reuse in the results wrapper, for stores the cluster backends write (S3, a folder): an index whose point the store
/// holds a succeeded attempt of (in its namespace) fetches that result instead of running its command, unless the
/// result changed since, reuse is off, or the index is retried or rerun.
/// </summary>
public sealed class WrapperReuseTests : IDisposable
{
    // Counts its runs in $MARKS and writes a row from its parameter.
    private const string Script = "echo ran >> \"$MARKS\"; echo \"{\\\"n\\\": $BATCHRUNNER_PARAMS}\" > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"; echo the log";

    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private string Marks => Path.Combine(_temp.Path, "marks");

    private int Runs => File.Exists(Marks) ? File.ReadAllLines(Marks).Length : 0;

    private static BatchJob Sweep(string name, string extra = "", string ns = "default")
    {
        var job = Wrapper.Job(Script, "sweep: {grid: {n: [1, 2, 3]}}\n" + extra, name);
        return job with { Metadata = job.Metadata with { Namespace = ns } };
    }

    private async Task<Wrapper.Result> RunAsync(BatchJob job, string store, int index, Dictionary<string, string>? environment = null)
    {
        var spec = Path.Combine(_temp.Path, $"spec-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(spec, RunIdentity.SpecJson(job));
        environment ??= [];
        environment["BATCHRUNNER_INDEX"] = $"{index}";
        environment["MARKS"] = Marks;
        var result = await Wrapper.RunAsync(Wrapper.Arguments(spec, store, job), environment);
        Assert.True(result.ExitCode == 0, result.Stderr);
        return result;
    }

    [Fact]
    public async Task An_identical_point_in_an_s3_store_is_fetched_instead_of_run_and_its_ledger_row_says_from_where()
    {
        var (store, uri) = await S3Server.Shared.NewStoreAsync();
        var environment = S3Server.Shared.Environment();
        var first = Sweep("first");
        await RunAsync(first, uri, 1, new Dictionary<string, string>(environment));

        await RunAsync(Sweep("second"), uri, 1, new Dictionary<string, string>(environment));

        Assert.Equal(1, Runs);
        var source = StoreLayout.AttemptPrefix("first", RunIdentity.For(first), 1, 1);
        var secondRun = RunIdentity.For(Sweep("second"));
        var row = LedgerRow.FromJson((await store.GetBytesAsync(StoreLayout.LedgerKey("second", secondRun, 1, 1), default))!);
        Assert.Equal(("succeeded", source, 1L), (row.Status, row.ReusedFrom, row.OutputRows));
        Assert.Equal(LedgerRow.FromJson((await store.GetBytesAsync(StoreLayout.LedgerKey("first", RunIdentity.For(first), 1, 1), default))!).PointKey, row.PointKey);
        Assert.Equal("{\"n\": {\"n\":2}}\n", System.Text.Encoding.UTF8.GetString((await store.GetBytesAsync($"{StoreLayout.OutputPrefix("second", secondRun, 1, 1)}/r.jsonl", default))!));
        Assert.Contains("the log", System.Text.Encoding.UTF8.GetString((await store.GetBytesAsync($"{StoreLayout.AttemptPrefix("second", secondRun, 1, 1)}/logs/stdout.txt", default))!), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("changed")]
    [InlineData("deleted")]
    public async Task A_result_changed_or_deleted_since_it_was_recorded_is_not_fetched_the_index_runs_and_says_why(string what)
    {
        var store = _temp.Sub("store");
        var first = Sweep("first");
        await RunAsync(first, store, 0);
        var output = Path.Combine(store, StoreLayout.OutputPrefix("first", RunIdentity.For(first), 0, 1), "r.jsonl");
        if (what == "changed")
        {
            File.WriteAllText(output, "{\"n\": 999}\n");
        }
        else
        {
            File.Delete(output);
        }

        await RunAsync(Sweep("second"), store, 0);

        Assert.Equal(2, Runs);
        var row = WrapperTests.Ledger(store, "second", RunIdentity.For(Sweep("second")), 0, 1);
        Assert.Null(row.ReusedFrom);
        Assert.Equal($"the earlier result of this point at {StoreLayout.AttemptPrefix("first", RunIdentity.For(first), 0, 1)} was deleted or changed since it was recorded, so the index ran", row.Reason);
        Assert.Equal("{\"n\": {\"n\":1}}", File.ReadAllText(Path.Combine(store, StoreLayout.OutputPrefix("second", RunIdentity.For(Sweep("second")), 0, 1), "r.jsonl")).Trim());
    }

    [Fact]
    public async Task Explain_over_the_store_says_where_a_reused_index_came_from_and_which_field_kept_another_from_it()
    {
        var store = _temp.Sub("store");
        var first = Sweep("first");
        await RunAsync(first, store, 1);
        await RunAsync(Sweep("copy"), store, 1);
        await RunAsync(Sweep("reseeded", "args: [other]"), store, 1);

        // The wrapper was handed its spec as a file (as a pod reads the plan ConfigMap): explain is given it too.
        var reused = await ExplainAsync("copy", store, Sweep("copy"));
        var reseeded = await ExplainAsync("reseeded", store, Sweep("reseeded", "args: [other]"));

        Assert.Equal(0, reused.Code);
        Assert.StartsWith($"copy index 1 (run {RunIdentity.For(Sweep("copy"))}): reused the result of {StoreLayout.AttemptPrefix("first", RunIdentity.For(first), 1, 1)}", reused.Stdout, StringComparison.Ordinal);
        Assert.Contains("reseeded index 1 (run r", reseeded.Stdout, StringComparison.Ordinal);
        Assert.Contains("ran (1 attempt(s), last succeeded)", reseeded.Stdout, StringComparison.Ordinal);
        Assert.Contains("  differs in: args\n", reseeded.Stdout, StringComparison.Ordinal);
        var withoutSpec = await ExplainAsync("copy", store, null);
        Assert.Equal(2, withoutSpec.Code);
        Assert.Contains("keeps no spec in", withoutSpec.Stderr, StringComparison.Ordinal);
        Assert.Contains("give the BatchJob file with --spec", withoutSpec.Stderr, StringComparison.Ordinal);
    }

    private async Task<(int Code, string Stdout, string Stderr)> ExplainAsync(string name, string store, BatchJob? job)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var spec = Path.Combine(_temp.Path, $"explain-{Guid.NewGuid():N}.json");
        if (job is not null)
        {
            await File.WriteAllTextAsync(spec, RunIdentity.SpecJson(job));
        }

        string[] args = job is null ? ["explain", name, "--index", "1", "--results", store] : ["explain", name, "--index", "1", "--results", store, "--spec", spec];
        var code = await BatchRunner.Cli.CliApplication.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString().Replace("\r\n", "\n", StringComparison.Ordinal), stderr.ToString());
    }

    [Fact]
    public async Task Reuse_off_another_namespace_a_retry_and_a_rerun_each_run_the_command()
    {
        var store = _temp.Sub("store");
        await RunAsync(Sweep("first"), store, 2);

        await RunAsync(Sweep("off", "reuse: false"), store, 2);
        await RunAsync(Sweep("tenant", ns: "team-b"), store, 2);
        await RunAsync(Sweep("retried"), store, 2, new Dictionary<string, string> { ["AWS_BATCH_JOB_ATTEMPT"] = "2" });
        await RunAsync(Sweep("rerun"), store, 2, new Dictionary<string, string> { [WorkloadEnvironment.RerunIndexes] = "2", [WorkloadEnvironment.AttemptNumbering] = "store" });
        Assert.Equal(5, Runs);

        // A part of a split run lists its indexes as a rerun does, and is no rerun: it takes the earlier point.
        await RunAsync(Sweep("part"), store, 2, new Dictionary<string, string> { [WorkloadEnvironment.RerunIndexes] = "2" });
        Assert.Equal(5, Runs);
        await RunAsync(Sweep("taken"), store, 2);
        Assert.Equal(5, Runs);
    }
}
