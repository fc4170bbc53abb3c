using Amazon.SQS.Model;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Prometheus;

namespace BatchRunner.Aws.Tests;

public sealed class DeleteBatcherTests
{
    [Fact]
    public async Task Deletes_racing_nudges_each_go_once_and_no_batch_goes_out_empty()
    {
        var sqs = new ScriptedSqsClient([]);
        var metrics = new IntakeMetrics(new CollectorRegistry());
        var keeper = new VisibilityKeeper(sqs, ScriptedSqsClient.QueueUrl, TimeSpan.FromSeconds(30), metrics, TimeProvider.System, NullLogger.Instance);
        using var deleter = new DeleteBatcher(sqs, ScriptedSqsClient.QueueUrl, TimeSpan.FromMilliseconds(50), keeper, metrics, TimeProvider.System, NullLogger.Instance);
        var running = deleter.RunAsync(CancellationToken.None);

        static Lease Lease(string handle, List<string> handles)
        {
            handles.Add(handle);
            return new Lease(new Message { MessageId = "m-" + handle, ReceiptHandle = handle, Body = "{}" }, DateTimeOffset.UtcNow, TimeSpan.FromSeconds(30));
        }

        // A message the batcher waits to batch with more; the intake goes idle (a nudge) and at that very moment hands
        // over one more; then a quiet moment. A nudge that wins the race against a message's arrival once left the
        // batcher a finished wait, and the next batch went out empty.
        var handles = new List<string>();
        for (var round = 0; round < 50; round++)
        {
            deleter.Enqueue(Lease($"a{round}", handles));
            await Task.Delay(5);
            deleter.Nudge();
            deleter.Enqueue(Lease($"b{round}", handles));
            await Task.Delay(10);
        }

        deleter.Complete();
        await running;

        Assert.Equal(0, sqs.EmptyDeleteBatches);
        Assert.Equal(handles.Order(StringComparer.Ordinal), sqs.Deleted.Order(StringComparer.Ordinal));
    }
}
