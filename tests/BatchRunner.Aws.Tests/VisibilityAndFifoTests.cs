using System.Collections.Concurrent;
using Amazon.SQS.Model;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Controller.Intake;
using BatchRunner.Local.Intake;

namespace BatchRunner.Aws.Tests;

/// <summary>Slow processing keeps its message invisible; FIFO queues keep each group's order and deduplicate.</summary>
public sealed class VisibilityAndFifoTests : IDisposable
{
    private readonly string _store = Directory.CreateTempSubdirectory("batchrunner-fifo-").FullName;

    private static Fauxqs Sqs => Fauxqs.Shared;

    [Fact]
    public async Task A_sink_slower_than_the_visibility_timeout_keeps_its_message_invisible_until_it_is_deleted()
    {
        var (queue, deadLetter) = await Sqs.CreateQueuePairAsync();
        using var client = Sqs.Client();
        await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml("slow")), default);
        var recording = new TaskCompletionSource();
        var sink = new MemorySink
        {
            Before = async (_, cancellation) =>
            {
                recording.TrySetResult();
                await Task.Delay(TimeSpan.FromSeconds(7), cancellation); // 3.5 visibility timeouts
            },
        };
        var sqs = new DelegatingSqsClient(Sqs.Client());

        await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter, visibilitySeconds: 2), sink, sqs);
        await recording.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var samples = new List<(int Visible, int InFlight)>();
        var sampledAt = new List<TimeSpan>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (sink.Jobs.Count == 0)
        {
            samples.Add(await Sqs.CountAsync(queue));
            sampledAt.Add(clock.Elapsed);
            await Task.Delay(250);
        }

        await run.WaitUntilDrainedAsync();

        // Never visible to anyone else while it was processed, so never handed out (and recorded) a second time. The
        // samples are close enough that a lapse of a whole visibility timeout would show, however slow each one was
        // on a loaded machine (a count of them was once 18 where 20 had been asked).
        Assert.True(sampledAt[^1] - sampledAt[0] >= TimeSpan.FromSeconds(4), $"samples over {sampledAt[^1] - sampledAt[0]} only");
        var widestGap = sampledAt.Zip(sampledAt.Skip(1), (a, b) => b - a).Max();
        Assert.True(widestGap < TimeSpan.FromSeconds(2), $"{widestGap} between two samples, as long as the visibility timeout");
        Assert.All(samples, s => Assert.Equal((0, 1), s));
        Assert.Single(sink.Calls);
        Assert.InRange(run.Metrics.VisibilityExtensions.Value, 4, 12);
        Assert.Equal(1, run.Count("created"));
    }

    [Fact]
    public async Task A_fifo_queue_keeps_each_group_in_order_while_groups_proceed_side_by_side()
    {
        var (queue, deadLetter) = await Sqs.CreateQueuePairAsync(fifo: true);
        using var client = Sqs.Client();
        var groups = new[] { "alpha", "beta", "gamma" };
        foreach (var i in Enumerable.Range(1, 6))
        {
            foreach (var group in groups)
            {
                await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml($"{group}-{i}"))
                {
                    MessageGroupId = group,
                    MessageDeduplicationId = $"{group}-{i}",
                }, default);
            }
        }

        var order = new ConcurrentQueue<string>();
        var sink = new MemorySink
        {
            Before = async (request, cancellation) =>
            {
                order.Enqueue(request.Name);
                await Task.Delay(Random.Shared.Next(5, 40), cancellation); // would shuffle a group processed concurrently
            },
        };

        await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter), sink);
        await run.WaitUntilDrainedAsync();

        foreach (var group in groups)
        {
            Assert.Equal(Enumerable.Range(1, 6).Select(i => $"{group}-{i}"), order.Where(n => n.StartsWith(group + "-", StringComparison.Ordinal)));
        }

        Assert.Equal(18, sink.Jobs.Count);
    }

    [Fact]
    public async Task A_fifo_deduplication_id_sent_twice_makes_one_job()
    {
        var (queue, deadLetter) = await Sqs.CreateQueuePairAsync(fifo: true);
        await using var store = SubmissionStore.Open(_store);
        using var client = Sqs.Client();
        foreach (var _ in Enumerable.Range(0, 2))
        {
            await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml(name: null)) { MessageGroupId = "default", MessageDeduplicationId = "order-17" }, default);
        }

        await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter), new LocalJobSink(store, _store));
        await run.WaitUntilDrainedAsync();

        var job = Assert.Single(store.List());
        Assert.Equal("order-17", job.Name); // a nameless request is named by its deduplication id
        Assert.Equal(1, run.Count("created"));
    }

    [Fact]
    public async Task A_fifo_deduplication_id_still_identifies_its_request_after_the_queue_forgot_it()
    {
        // SQS deduplicates within five minutes only; the job's name, derived from the id, lasts.
        await using var store = SubmissionStore.Open(_store);
        foreach (var attempt in Enumerable.Range(0, 2))
        {
            var (queue, deadLetter) = await Sqs.CreateQueuePairAsync(fifo: true);
            using var client = Sqs.Client();
            await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml(name: null, ns: "team-a")) { MessageGroupId = "team-a", MessageDeduplicationId = "Nightly/2026-07-01" }, default);
            await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter), new LocalJobSink(store, _store));
            await run.WaitUntilDrainedAsync();
            Assert.Equal(attempt == 0 ? (1, 0) : (0, 1), (run.Count("created"), run.Count("duplicate")));
        }

        var job = Assert.Single(store.List());
        Assert.Matches("^nightly-2026-07-01-[0-9a-f]{10}$", job.Name);
    }

    public void Dispose() => Directory.Delete(_store, recursive: true);
}
