using Amazon.SQS.Model;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Local.Intake;
using BatchRunner.Controller.Intake;

namespace BatchRunner.Aws.Tests;

/// <summary>At-least-once delivery made exactly-once, against fauxqs, recording into the real local submission store.</summary>
public sealed class ExactlyOnceTests : IDisposable
{
    private readonly string _store = Directory.CreateTempSubdirectory("batchrunner-intake-").FullName;

    private static Fauxqs Sqs => Fauxqs.Shared;

    [Fact]
    public async Task A_valid_request_becomes_exactly_one_job_and_its_message_is_deleted()
    {
        var (queue, deadLetter) = await Sqs.CreateQueuePairAsync();
        await using var store = SubmissionStore.Open(_store);
        using var client = Sqs.Client();
        var sent = await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml("sweep-1")), default);

        await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter), new LocalJobSink(store, _store));
        await run.WaitUntilDrainedAsync();

        var job = Assert.Single(store.List());
        Assert.Equal(("default", "sweep-1", SubmissionState.Pending), (job.Namespace, job.Name, job.State));
        Assert.Equal("sqs:" + sent.MessageId, job.Source);
        Assert.Equal(1, run.Count("created"));
        Assert.Empty(await Sqs.DrainAsync(deadLetter));
    }

    [Fact]
    public async Task The_same_body_sent_twice_creates_one_job_and_both_messages_are_deleted()
    {
        var (queue, deadLetter) = await Sqs.CreateQueuePairAsync();
        await using var store = SubmissionStore.Open(_store);
        using var client = Sqs.Client();
        var nameless = Specs.Yaml(name: null);
        foreach (var body in new[] { Specs.Yaml("twice"), Specs.Yaml("twice"), nameless, nameless })
        {
            await client.SendMessageAsync(new SendMessageRequest(queue, body), default);
        }

        await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter), new LocalJobSink(store, _store));
        await run.WaitUntilDrainedAsync();

        Assert.Equal(2, store.List().Count);
        Assert.Contains(store.List(), s => s.Name.StartsWith("req-", StringComparison.Ordinal));
        Assert.Equal((2, 2), (run.Count("created"), run.Count("duplicate")));
        Assert.Empty(await Sqs.DrainAsync(deadLetter));
    }

    [Fact]
    public async Task A_message_redelivered_after_a_crash_between_recording_and_deleting_creates_no_second_job()
    {
        var (queue, deadLetter) = await Sqs.CreateQueuePairAsync();
        await using var store = SubmissionStore.Open(_store);
        using var client = Sqs.Client();
        await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml("crash-before-delete")), default);

        // The first consumer records the job, then "dies" before its delete reaches SQS.
        var crashing = new DelegatingSqsClient(Sqs.Client())
        {
            OnDelete = _ => throw new HttpRequestException("simulated crash: the delete never reached SQS"),
        };
        var first = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter, visibilitySeconds: 2), new LocalJobSink(store, _store), crashing);
        await Eventually.WaitAsync(() => store.List().Count == 1 && crashing.DeleteBatchCalls > 0, "the first consumer recorded the job and tried to delete");
        await first.StopAsync();
        await first.DisposeAsync();
        Assert.Equal((0, 1), await Sqs.CountAsync(queue)); // still there, invisible until its visibility lapses

        // The next consumer gets the message again once its visibility has lapsed, finds the job, and deletes the message.
        await using var second = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter, visibilitySeconds: 2), new LocalJobSink(store, _store));
        await second.WaitUntilDrainedAsync();

        Assert.Single(store.List());
        Assert.Equal((0, 1), (second.Count("created"), second.Count("duplicate")));
        Assert.Empty(await Sqs.DrainAsync(deadLetter));
    }

    public void Dispose() => Directory.Delete(_store, recursive: true);
}
