using System.Collections.Concurrent;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Prometheus;

namespace BatchRunner.Aws.Tests;

/// <summary>
/// One receive with several messages of each FIFO group, as SQS delivers them: each group is processed in order,
/// one message after another, and a group whose message must be retried holds back the ones after it.
/// </summary>
public sealed class FifoGroupTests
{
    private static readonly string[] Groups = ["g1", "g2"];

    private static (string Group, string Body)[] Interleaved() =>
        [.. Enumerable.Range(1, 5).SelectMany(i => Groups.Select(g => (g, Specs.Yaml($"{g}-{i}"))))];

    private static SqsIntakeOptions Options() => new()
    {
        Enabled = true,
        QueueUrl = ScriptedSqsClient.QueueUrl,
        DeadLetterQueueUrl = ScriptedSqsClient.DeadLetterUrl,
        WaitTimeSeconds = 0,
        DeleteFlushMilliseconds = 20,
        RetryBaseDelaySeconds = 7,
        RetryMaxDelaySeconds = 7,
        MaxConcurrency = 16,
        Tenants = IntakeRun.Tenants,
    };

    private static async Task RunUntilAsync(ScriptedSqsClient sqs, IJobSink sink, Func<bool> done)
    {
        using var stop = new CancellationTokenSource();
        using var consumer = new SqsIntakeConsumer(sqs, sink, Options(), new IntakeMetrics(new CollectorRegistry()), TimeProvider.System, NullLogger<SqsIntakeConsumer>.Instance);
        var running = consumer.RunAsync(stop.Token);
        await Eventually.WaitAsync(() => done() || running.IsCompleted, "the scripted messages handled", 20);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task Messages_of_one_group_in_one_batch_are_recorded_in_order_and_groups_overlap()
    {
        var sqs = new ScriptedSqsClient(Interleaved());
        var order = new ConcurrentQueue<string>();
        var active = 0;
        var mostActive = 0;
        var sink = new MemorySink
        {
            Before = async (request, cancellation) =>
            {
                var now = Interlocked.Increment(ref active);
                InterlockedMax(ref mostActive, now);
                order.Enqueue(request.Name);
                await Task.Delay(Random.Shared.Next(10, 60), cancellation);
                Interlocked.Decrement(ref active);
            },
        };

        await RunUntilAsync(sqs, sink, () => sqs.Deleted.Count == 10);

        foreach (var group in Groups)
        {
            Assert.Equal(Enumerable.Range(1, 5).Select(i => $"{group}-{i}"), order.Where(n => n.StartsWith(group, StringComparison.Ordinal)));
        }

        Assert.Equal(2, mostActive); // the two groups side by side, never two of one group
    }

    [Fact]
    public async Task A_retried_message_holds_back_the_rest_of_its_group_and_not_the_other_group()
    {
        var sqs = new ScriptedSqsClient(Interleaved());
        var sink = new MemorySink
        {
            Before = (request, _) => request.Name == "g1-2" ? throw new HttpRequestException("API server unavailable") : Task.CompletedTask,
        };

        await RunUntilAsync(sqs, sink, () => sqs.Deleted.Count == 6 && sqs.VisibilityChanges.Count == 4);

        Assert.Equal(["g1-1", "g1-2", "g2-1", "g2-2", "g2-3", "g2-4", "g2-5"], sink.Calls.Select(c => c.Name).Order());

        // g1-2 comes back after its backoff; g1-3..5 are handed back at once, last first, so they queue up behind it.
        var changes = sqs.VisibilityChanges.ToList();
        Assert.Equal(("r03", true), (changes[0].Handle, changes[0].Seconds >= 5));
        Assert.Equal([("r09", 0), ("r07", 0), ("r05", 0)], changes.Skip(1));
        Assert.DoesNotContain("r03", sqs.Deleted);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
