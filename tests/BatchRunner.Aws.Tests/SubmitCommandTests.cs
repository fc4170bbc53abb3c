using System.CommandLine;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Sqs;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Cli.Commands;
using BatchRunner.Controller.Intake;
using BatchRunner.Local.Intake;

namespace BatchRunner.Aws.Tests;

/// <summary><c>batchrunner submit</c> end to end: specs through fauxqs into the intake and the local store.</summary>
public sealed class SubmitCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("batchrunner-submit-").FullName;

    private static Fauxqs Sqs => Fauxqs.Shared;

    private string Write(string file, string text)
    {
        var path = Path.Combine(_root, file);
        File.WriteAllText(path, text);
        return path;
    }

    private static async Task<(int Exit, string[] Out, string Err, DelegatingSqsClient? Client)> SubmitAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        DelegatingSqsClient? client = null;
        var root = new RootCommand { SubmitCommand.Create(stdout, stderr, connection => client = new DelegatingSqsClient(SqsClientFactory.Create(connection))) };
        var exit = await root.Parse(["submit", .. args, "--endpoint-url", Sqs.Url, "--region", Fauxqs.Region])
            .InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (exit, stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries), stderr.ToString(), client);
    }

    [Fact]
    public async Task Submitting_many_specs_sends_them_in_batches_of_ten_prints_one_id_each_and_each_becomes_a_job()
    {
        var (queue, deadLetter) = await Sqs.CreateQueuePairAsync();
        var files = Enumerable.Range(1, 12).Select(i => Write($"job-{i}.yaml", Specs.Yaml($"job-{i}"))).ToArray();

        var (exit, ids, err, client) = await SubmitAsync([.. files, "--queue", queue]);

        Assert.Equal(0, exit);
        Assert.Equal("", err);
        Assert.Equal(12, ids.Distinct().Count());
        Assert.Equal(2, client!.SendBatchCalls);

        await using var store = SubmissionStore.Open(Path.Combine(_root, "store"));
        await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter), new LocalJobSink(store, _root));
        await run.WaitUntilDrainedAsync();
        Assert.Equal(ids.Select(id => "sqs:" + id).Order(), store.List().Select(s => s.Source!).Order());
        Assert.Equal(Enumerable.Range(1, 12).Select(i => $"job-{i}").Order(), store.List().Select(s => s.Name).Order());
    }

    [Fact]
    public async Task A_yaml_spec_is_sent_as_the_same_document_in_json_unresolved()
    {
        var (queue, _) = await Sqs.CreateQueuePairAsync();
        var yaml = "# a comment\n" + Specs.Yaml("as-json");

        var (exit, _, err, _) = await SubmitAsync(Write("as-json.yaml", yaml), "--queue", queue);
        var sent = Assert.Single(await Sqs.DrainAsync(queue)).Body;

        Assert.Equal((0, ""), (exit, err));
        Assert.StartsWith("{", sent, StringComparison.Ordinal);
        // Nothing resolved: the consuming door still chooses the backend of a document that names none.
        Assert.DoesNotContain("backend", sent, StringComparison.Ordinal);
        Assert.Equal(
            BatchRunner.Core.Runs.RunIdentity.For(BatchRunner.Core.Spec.BatchJobParser.Parse(yaml).GetJobOrThrow()),
            BatchRunner.Core.Runs.RunIdentity.For(BatchRunner.Core.Spec.BatchJobParser.Parse(sent).GetJobOrThrow()));
    }

    [Fact]
    public async Task One_invalid_spec_sends_nothing_and_exits_2_with_the_parser_s_errors()
    {
        var (queue, _) = await Sqs.CreateQueuePairAsync();
        var good = Write("good.yaml", Specs.Yaml("good"));
        var bad = Write("bad.yaml", Specs.Yaml("bad", extraSpec: "parallelism: 0"));

        var (exit, ids, err, client) = await SubmitAsync(good, bad, "--queue", queue);

        Assert.Equal(2, exit);
        Assert.Empty(ids);
        Assert.Contains($"{bad}: spec.parallelism: must be >= 1, got 0", err, StringComparison.Ordinal);
        Assert.Contains("nothing was sent", err, StringComparison.Ordinal);
        Assert.Null(client);
        Assert.Equal((0, 0), await Sqs.CountAsync(queue));
    }

    [Fact]
    public async Task On_a_fifo_queue_the_group_is_the_namespace_and_the_same_spec_twice_is_deduplicated()
    {
        var (queue, _) = await Sqs.CreateQueuePairAsync(fifo: true);
        var a = Write("a.yaml", Specs.Yaml("a", ns: "team-a"));
        var b = Write("b.json", Specs.Json("b"));

        var (exit, ids, err, _) = await SubmitAsync(a, b, a, "--queue", queue);

        Assert.Equal((0, ""), (exit, err));
        Assert.Equal(3, ids.Length);
        Assert.Equal(ids[0], ids[2]); // SQS answers a duplicate with the first message's id
        var messages = await Sqs.DrainAsync(queue);
        Assert.Equal(["default", "team-a"], messages.Select(m => m.Attributes["MessageGroupId"]).Order());
        var hash = IntakeRequestReader.Read(File.ReadAllText(a), null, null).Request!.ContentHash;
        Assert.Contains(hash["sha256:".Length..], messages.Select(m => m.Attributes["MessageDeduplicationId"]));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
