using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;

namespace BatchRunner.Kubernetes.Tests;

public sealed class OperatorRehearsalTests
{
    [Fact]
    public async Task The_rehearsal_dispatches_its_batchjob_to_a_job_and_writes_the_status_that_follows()
    {
        var outcome = await OperatorRehearsal.RunAsync(DispatchSettings.Default, TimeProvider.System, CancellationToken.None);

        Assert.Equal("rehearsal", outcome.JobName);
        // The Job went through the serializer: its pod template carries the sweep's plan.
        Assert.InRange(outcome.JobBytes, 1000, 16 * 1024);
        // Created, then counted by the Job controller: one status write says it runs.
        Assert.Equal("Running", outcome.Phase);
        Assert.Equal(1, outcome.StatusWrites);
    }

    [Fact]
    public async Task The_rehearsal_takes_the_wrapper_path_when_the_controller_collects_results()
    {
        var settings = DispatchSettings.Default with { Results = new ResultsCollection("s3://bucket/prefix", "batchrunner/controller:test", Region: "eu-west-1") };
        var plain = await OperatorRehearsal.RunAsync(DispatchSettings.Default, TimeProvider.System, CancellationToken.None);

        var collecting = await OperatorRehearsal.RunAsync(settings, TimeProvider.System, CancellationToken.None);

        Assert.Equal("Running", collecting.Phase);
        // The init container, the wrapper's command and the store's settings are in the Job it built (and outweigh
        // what the sh entrypoint's pods carry of the plan that the wrapper's do not).
        Assert.True(collecting.JobBytes > plain.JobBytes + 150, $"{collecting.JobBytes} bytes with a store, {plain.JobBytes} without");
    }
}
