using System.Text.Json.Nodes;
using BatchRunner.Aws.Tests.Batch;
using BatchRunner.Aws.Tests.Protocol;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Aws.Tests;

/// <summary>
/// The AWS-facing commands of <c>./batchrunner</c> run as processes (the Native AOT binary, as users run it), each
/// against a real server on 127.0.0.1: <c>submit</c> against fauxqs's SQS, <c>run</c> of an aws-batch spec against
/// the stub Batch endpoint. Reflection that the trimmer cut away fails only at run time, so only this proves them.
/// </summary>
public sealed class NativeCliTests : IDisposable
{
    private const string SecretKey = "native-cli-test-secret";

    private readonly string _root = Directory.CreateTempSubdirectory("batchrunner-native-").FullName;

    private static Fauxqs Sqs => Fauxqs.Shared;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Write(string file, string text)
    {
        var path = Path.Combine(_root, file);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Credentials and region as a deployment gives them, and nothing read from a profile or instance metadata.</summary>
    private static Dictionary<string, string> AwsEnvironment() => new(StringComparer.Ordinal)
    {
        ["AWS_ACCESS_KEY_ID"] = "AKIDNATIVECLI",
        ["AWS_SECRET_ACCESS_KEY"] = SecretKey,
        ["AWS_REGION"] = Fauxqs.Region,
        ["AWS_EC2_METADATA_DISABLED"] = "true",
        ["AWS_CONFIG_FILE"] = "/nonexistent/batchrunner-test/config",
        ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/batchrunner-test/credentials",
    };

    private static BatchJob Parse(string text) => BatchJobParser.Parse(text).GetJobOrThrow();

    [Fact]
    public async Task Submit_sends_each_spec_prints_its_message_id_and_the_queue_holds_the_same_batchjob()
    {
        var (queue, _) = await Sqs.CreateQueuePairAsync();
        var yaml = Specs.Yaml("native-a", extraSpec: "completions: 3");
        var json = Specs.Json("native-b", ns: "team-b");
        var files = new[] { Write("a.yaml", yaml), Write("b.json", json) };

        var result = await CliProcess.RunAsync(["submit", .. files, "--queue", queue, "--endpoint-url", Sqs.Url, "--region", Fauxqs.Region], AwsEnvironment());

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(result.Stderr.Length == 0, result.ToString());
        var ids = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(ids.Length == 2 && ids.Distinct().Count() == 2, result.ToString());

        // In the order given: each printed id is the message that carries that file's BatchJob.
        var messages = (await Sqs.DrainAsync(queue)).ToDictionary(m => m.MessageId, m => m.Body);
        Assert.Equal(ids.Order(), messages.Keys.Order());
        foreach (var (id, text) in ids.Zip([yaml, json]))
        {
            var sent = Parse(messages[id]);
            var written = Parse(text);
            Assert.Equal((written.Metadata.Name, written.Metadata.Namespace, written.Spec.Completions), (sent.Metadata.Name, sent.Metadata.Namespace, sent.Spec.Completions));
            Assert.Equal(RunIdentity.For(written), RunIdentity.For(sent));
        }
    }

    [Fact]
    public async Task Submit_to_a_fifo_queue_named_by_aws_endpoint_url_sqs_deduplicates_the_same_spec()
    {
        var (queue, _) = await Sqs.CreateQueuePairAsync(fifo: true);
        var spec = Write("fifo.yaml", Specs.Yaml("native-fifo", ns: "team-f"));
        var environment = AwsEnvironment();
        environment["AWS_ENDPOINT_URL_SQS"] = Sqs.Url;

        var result = await CliProcess.RunAsync(["submit", spec, spec, "--queue", queue], environment);

        Assert.True(result.ExitCode == 0, result.ToString());
        var ids = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(ids.Length == 2 && ids[0] == ids[1], result.ToString()); // SQS answers a duplicate with the first message's id
        var message = Assert.Single(await Sqs.DrainAsync(queue));
        Assert.Equal(ids[0], message.MessageId);
        Assert.Equal("team-f", message.Attributes["MessageGroupId"]);
        Assert.Equal(RunIdentity.For(Parse(File.ReadAllText(spec))), RunIdentity.For(Parse(message.Body)));
    }

    [Fact]
    public async Task Submit_to_a_queue_that_does_not_exist_exits_1_naming_each_spec_and_prints_no_id()
    {
        var spec = Write("lost.yaml", Specs.Yaml("native-lost"));
        var queue = $"{Sqs.Url}/000000000000/no-such-queue-{Guid.NewGuid():N}";

        var result = await CliProcess.RunAsync(["submit", spec, "--queue", queue, "--endpoint-url", Sqs.Url, "--region", Fauxqs.Region], AwsEnvironment());

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.True(result.Stdout.Length == 0, result.ToString());
        // SQS's own answer, not a failure of the binary hidden behind "not sent".
        Assert.Contains($"{spec}: not sent: The specified queue does not exist", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(SecretKey, result.Stderr, StringComparison.Ordinal);
    }

    private const string AwsBatchSpec = """
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: from-native, namespace: team-a}
        spec:
          image: registry.example/sim:1
          command: [python, sim.py]
          args: [--fast]
          env: [{name: LOG_LEVEL, value: debug}]
          completions: 3
          parallelism: 3
          backend: aws-batch
        """;

    /// <summary>How the CLI is configured for AWS Batch: only the environment, as the controller's settings are spelled.</summary>
    private static Dictionary<string, string> AwsBatchEnvironment(BatchRig rig)
    {
        var environment = AwsEnvironment();
        environment["AWS_ENDPOINT_URL_BATCH"] = rig.Server.Url.ToString();
        environment["BatchRunner__AwsBatch__JobQueue"] = BatchRig.Queue;
        environment["BatchRunner__AwsBatch__ExecutionRoleArn"] = BatchRig.ExecutionRole;
        environment["BatchRunner__AwsBatch__PollSeconds"] = "0.02";
        environment["BatchRunner__AwsBatch__MaxPollSeconds"] = "0.05";
        environment["BatchRunner__Results__Uri"] = rig.Store;
        return environment;
    }

    [Fact]
    public async Task Run_of_an_aws_batch_spec_follows_it_to_success_and_a_rerun_submits_nothing_new()
    {
        await using var rig = await BatchRig.StartAsync();
        var spec = Write("aws-batch.yaml", AwsBatchSpec);
        var runId = RunIdentity.For(Parse(AwsBatchSpec));
        var local = Path.Combine(_root, "local");
        var environment = AwsBatchEnvironment(rig);

        var first = await CliProcess.RunAsync(["run", spec, "--store", local], environment);

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.StartsWith($"from-native run {runId}: Succeeded, 3 of 3 indexes succeeded, 0 failed (AWS Batch queue {BatchRig.Queue}", first.Stdout, StringComparison.Ordinal);
        Assert.Contains($"results: {rig.Store}/batchjob=from-native/run={runId}/", first.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(SecretKey, first.Stdout + first.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, rig.Server.CallCount("SubmitJob"));
        Assert.Equal(3, Assert.Single(rig.Server.Jobs).Size);
        Assert.True(File.Exists(Path.Combine(local, "aws-batch", "team-a", "from-native", runId + ".json")), first.ToString());
        // The spec the workloads read is in the results store, in the form they read back as the same run.
        var stored = Path.Combine(rig.Store, StoreLayout.SpecKey("from-native", runId));
        Assert.True(File.Exists(stored), first.ToString());
        Assert.Equal(runId, RunIdentity.For(StoredSpec.Parse(File.ReadAllText(stored))));

        // Every request the native binary sent is one AWS would take (botocore's model).
        var calls = rig.Server.Calls.ToList();
        var results = await Botocore.ValidateAsync("batch", calls);
        var invalid = calls.Zip(results).Where(p => p.Second.Errors.Length > 0).Select(p => $"{p.First.Operation} {p.First.Body}\n  {p.Second.Errors}").ToList();
        Assert.True(invalid.Count == 0, string.Join("\n", invalid));
        var submitted = JsonNode.Parse(rig.Server.Bodies("SubmitJob")[0])!;
        Assert.Equal((BatchRig.Queue, 3), ((string?)submitted["jobQueue"], (int?)submitted["arrayProperties"]?["size"]));

        // The rerun reads the finished run from the state file the first one wrote: no call to AWS Batch at all
        // (a state file it could not read would cost lookups, and a warning).
        var before = rig.Server.Calls.Count;
        var again = await CliProcess.RunAsync(["run", spec, "--store", local], environment);

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.StartsWith($"from-native run {runId}: Succeeded, 3 of 3 indexes succeeded", again.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, rig.Server.Calls.Count);
        Assert.Single(rig.Server.Jobs);
        Assert.All(new[] { first, again }, r => Assert.False(r.Stderr.Contains(" WRN ", StringComparison.Ordinal) || r.Stderr.Contains(" ERR ", StringComparison.Ordinal), r.ToString()));
    }

    [Fact]
    public async Task Run_of_an_aws_batch_spec_with_a_failing_index_exits_1_naming_the_index_and_its_exit_code()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.ExitCode = (index, _) => index == 2 ? 42 : 0;
        var spec = Write("aws-batch.yaml", AwsBatchSpec);

        var result = await CliProcess.RunAsync(["run", spec, "--store", Path.Combine(_root, "local")], AwsBatchEnvironment(rig));

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("Failed, 2 of 3 indexes succeeded, 1 failed", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("index 2 failed: Essential container in task exited (exit code 42)", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_of_an_aws_batch_spec_that_aws_refuses_exits_1_with_the_aws_error()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.DenyAccess = true;
        var spec = Write("aws-batch.yaml", AwsBatchSpec);

        var result = await CliProcess.RunAsync(["run", spec, "--store", Path.Combine(_root, "local")], AwsBatchEnvironment(rig));

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("AccessDeniedException", result.Stderr, StringComparison.Ordinal);
        Assert.Empty(rig.Server.Jobs);
        Assert.DoesNotContain(SecretKey, result.Stdout + result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stopping_the_cli_stops_following_an_aws_batch_run_and_running_the_spec_again_follows_it_to_the_end()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.AdvanceOnDescribe = false;
        var spec = Write("aws-batch.yaml", AwsBatchSpec);
        var local = Path.Combine(_root, "local");

        using (var running = CliProcess.Start(["run", spec, "--store", local], AwsBatchEnvironment(rig)))
        {
            await running.WaitUntilAsync(() => rig.Server.CallCount("DescribeJobs") > 0, "the submitted array was looked at");
            running.Terminate();
            var stopped = await running.WaitAsync();

            Assert.True(stopped.ExitCode == 130, stopped.ToString());
            Assert.Contains("what was submitted goes on in aws-batch", stopped.Stderr, StringComparison.Ordinal);
            Assert.Empty(Assert.Single(rig.Server.Jobs).StoppedBy);
        }

        rig.Server.AdvanceOnDescribe = true;
        var again = await CliProcess.RunAsync(["run", spec, "--store", local], AwsBatchEnvironment(rig));

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("Succeeded, 3 of 3 indexes succeeded", again.Stdout, StringComparison.Ordinal);
        Assert.Equal(1, rig.Server.CallCount("SubmitJob"));
    }
}
