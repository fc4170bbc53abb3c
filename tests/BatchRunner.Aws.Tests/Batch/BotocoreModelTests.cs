using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Tests.Protocol;
using BatchRunner.Core.Runs;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>
/// Every request body the Batch client sent in real scenarios against the stub, validated by botocore against the
/// official AWS Batch model (botocore/data/batch/2016-08-10/service-2.json: required members, types, enums,
/// minimums, unknown members), and each operation's HTTP binding compared with the model's.
/// </summary>
public sealed class BotocoreModelTests
{
    [Fact]
    public async Task Every_request_the_batch_client_sends_is_valid_for_the_aws_batch_model()
    {
        await using var rig = await BatchRig.StartAsync();
        rig.Server.ExitCode = (index, _) => index == 4 ? 3 : 0;
        var dispatcher = rig.Dispatcher();

        // An array with failures and retries, a plain job, windows under parallelism, a cancellation, a CancelJob.
        await BatchRig.RunToEndAsync(dispatcher, BatchRig.Job("array", extra: "  completions: 8\n  parallelism: 8\n  retry: {attempts: 2}\n  timeoutSeconds: 90"));
        await BatchRig.RunToEndAsync(dispatcher, BatchRig.Job("plain", extra: "  deadlineSeconds: 3600"));
        await BatchRig.RunToEndAsync(rig.Dispatcher(rig.Options(o => new AwsBatchOptions
        {
            Enabled = true, JobQueue = o.JobQueue, ExecutionRoleArn = o.ExecutionRoleArn, DefaultResultsUri = o.DefaultResultsUri,
            ShareIdentifier = "teamA", AssignPublicIp = true, PlatformVersion = "1.4.0",
        })), BatchRig.Job("windows", extra: "  completions: 9\n  parallelism: 4\n  resources: {cpu: 250m, memory: 512Mi}"));
        await BatchRig.RunToEndAsync(rig.Dispatcher(rig.Options(o => new AwsBatchOptions
        {
            Enabled = true, JobQueue = o.JobQueue, ExecutionRoleArn = o.ExecutionRoleArn, DefaultResultsUri = o.DefaultResultsUri, FairShareByNamespace = true,
        })), BatchRig.Job("fairshare", extra: "  completions: 2\n  priority: -7"));
        var cancelled = BatchRig.Job("cancelled", extra: "  completions: 3\n  parallelism: 3");
        var started = await dispatcher.AdvanceAsync(cancelled, RunIdentity.For(cancelled), null, null, allowSubmit: true, allowance: null, default);
        await dispatcher.CancelAsync(cancelled, "cancelled", RunIdentity.For(cancelled), started.State, "BatchJob deleted", default);
        await rig.Api.CancelJobAsync(new CancelJobRequest(rig.Server.Jobs[0].Id, "no longer needed"), default);

        var calls = rig.Server.Calls.ToList();
        var operations = calls.Select(c => c.Operation).Distinct().Order().ToList();
        Assert.Equal(["CancelJob", "DescribeJobDefinitions", "DescribeJobs", "ListJobs", "RegisterJobDefinition", "SubmitJob", "TerminateJob"], operations);
        var results = await Botocore.ValidateAsync("batch", calls);
        var invalid = calls.Zip(results).Where(p => p.Second.Errors.Length > 0).Select(p => $"{p.First.Operation} {p.First.Body}\n  {p.Second.Errors}").ToList();
        Assert.True(invalid.Count == 0, string.Join("\n", invalid));
        Assert.All(calls.Zip(results), p => Assert.Equal(("POST", "/v1/" + p.First.Operation.ToLowerInvariant()), (p.Second.Method, p.Second.RequestUri)));
        Assert.True(calls.Count > 30, $"{calls.Count} calls validated");
    }

    [Fact]
    public async Task Botocore_refuses_what_aws_would_so_the_check_can_fail()
    {
        var results = await Botocore.ValidateAsync("batch",
        [
            ("SubmitJob", """{"jobName":"a","jobQueue":"q","arrayProperties":{"size":"3"}}"""),
            ("RegisterJobDefinition", """{"jobDefinitionName":"d","type":"container","platformCapabilities":["LAMBDA"]}"""),
            ("DescribeJobs", """{"jobs":[],"extra":1}"""),
        ]);

        Assert.Contains("Missing required parameter in input: \"jobDefinition\"", results[0].Errors, StringComparison.Ordinal);
        Assert.Contains("arrayProperties.size", results[0].Errors, StringComparison.Ordinal);
        Assert.Contains("platformCapabilities[0]", results[1].Errors, StringComparison.Ordinal);
        Assert.Contains("Unknown parameter in input: \"extra\"", results[2].Errors, StringComparison.Ordinal);
    }
}
