using System.Text;
using Amazon.SQS.Model;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Controller.Intake;
using BatchRunner.Local.Intake;

namespace BatchRunner.Aws.Tests;

/// <summary>Bad messages are refused with their reason, dead-lettered once, and leave every other request untouched.</summary>
public sealed class PoisonMessageTests : IDisposable
{
    private readonly string _store = Directory.CreateTempSubdirectory("batchrunner-poison-").FullName;

    private static Fauxqs Sqs => Fauxqs.Shared;

    [Fact]
    public async Task Each_poison_message_is_dead_lettered_once_with_its_reason_and_the_valid_ones_around_it_all_get_through()
    {
        var (queue, deadLetter) = await Sqs.CreateQueuePairAsync();
        await using var store = SubmissionStore.Open(_store);
        var sink = new LocalJobSink(store, _store);

        // Another tenant's job already has the name the collision request asks for.
        await store.RecordAsync(new Submission("default", "taken", "sha256:someone-else", "{}", "sqs:earlier"));

        using var client = Sqs.Client();
        var random = new Random(2026);
        var garbage = new byte[4096];
        random.NextBytes(garbage);
        for (var i = 0; i < garbage.Length; i++)
        {
            // Raw inside a JSON string: no quote, backslash or control byte (SQS refuses those); the rest is binary.
            garbage[i] = garbage[i] is < 0x20 or (byte)'"' or (byte)'\\' ? (byte)0xFF : garbage[i];
        }

        var latin1 = Encoding.Latin1.GetBytes(Specs.Yaml("cafe-latin1", script: "echo caf\u00e9 cr\u00e8me"));
        var expected = new Dictionary<string, string>(StringComparer.Ordinal);
        var valid = new List<string>();

        async Task Send(string body, string? code)
        {
            var id = (await client.SendMessageAsync(new SendMessageRequest(queue, body), default)).MessageId;
            if (code is null)
            {
                valid.Add(id);
            }
            else
            {
                expected[id] = code;
            }
        }

        await Send(Specs.Yaml("valid-before"), null);
        await Send(" \n\t\n", "empty");
        expected[await Sqs.SendRawAsync(queue, garbage)] = "binary";
        await Send(Specs.Yaml("valid-between-1"), null);
        await Send(Specs.Yaml("huge", extraSpec: "args: [\"" + new string('x', 300 * 1024) + "\"]"), "oversize");
        await Send(Specs.Yaml("bad-parallelism", extraSpec: "parallelism: 0"), "invalid_spec");
        await Send("this: [is, not: yaml", "invalid_spec");
        await Send(Specs.Yaml("elsewhere", ns: "kube-system"), "tenant_refused");
        await Send(Specs.Yaml("taken"), "name_collision");
        expected[await Sqs.SendRawAsync(queue, latin1)] = "not_utf8";
        await Send(Specs.Yaml("valid-between-2"), null);
        await Send(Specs.Json("valid-after"), null);

        await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter), sink);
        await run.WaitUntilDrainedAsync();
        await Task.Delay(1500); // a redelivery, had there been one, would show now
        var dead = await Sqs.DrainAsync(deadLetter);

        // Every refused message exactly once, with its code, its reason and its original id.
        Assert.Equal(expected.Count, dead.Count);
        foreach (var message in dead)
        {
            var source = message.MessageAttributes[DeadLetterPublisher.SourceMessageIdAttribute].StringValue;
            Assert.Equal(expected[source], message.MessageAttributes[DeadLetterPublisher.CodeAttribute].StringValue);
            Assert.False(string.IsNullOrWhiteSpace(message.MessageAttributes[DeadLetterPublisher.ReasonAttribute].StringValue));
        }

        Assert.Equal(expected.Keys.Order(), dead.Select(m => m.MessageAttributes[DeadLetterPublisher.SourceMessageIdAttribute].StringValue).Order());

        // The reasons say what is wrong, as the CLI would.
        string Reason(string code) => dead.First(m => m.MessageAttributes[DeadLetterPublisher.CodeAttribute].StringValue == code)
            .MessageAttributes[DeadLetterPublisher.ReasonAttribute].StringValue;
        Assert.Contains("spec.parallelism: must be >= 1, got 0", dead.Select(m => m.MessageAttributes[DeadLetterPublisher.ReasonAttribute].StringValue));
        Assert.Contains("kube-system", Reason("tenant_refused"), StringComparison.Ordinal);
        Assert.Contains("default/taken already exists with different content", Reason("name_collision"), StringComparison.Ordinal);
        Assert.Contains("more than the limit of 262,144", Reason("oversize"), StringComparison.Ordinal);
        Assert.Contains("not UTF-8", Reason("not_utf8"), StringComparison.Ordinal);

        // The valid ones are all jobs; the taken name still belongs to its first owner.
        Assert.Equal(["valid-after", "valid-before", "valid-between-1", "valid-between-2"],
            store.List().Where(s => s.Source != "sqs:earlier").Select(s => s.Name).Order());
        Assert.Equal("sha256:someone-else", store.Find("default", "taken")!.ContentHash);
        Assert.Equal(valid.Count, run.Count("created"));
        Assert.Equal(expected.Count, run.Count("dead_lettered"));
        Assert.Equal(2, run.Rejected("invalid_spec"));
        Assert.Equal(1, run.Rejected("binary"));
    }

    [Fact]
    public async Task The_dead_letter_queue_is_taken_from_the_queue_s_redrive_policy_when_none_is_configured()
    {
        var deadLetter = await Sqs.CreateQueueAsync($"redrive-dlq-{Guid.NewGuid():N}");
        using var client = Sqs.Client();
        var arn = (await client.Sdk.GetQueueAttributesAsync(deadLetter, ["QueueArn"])).Attributes["QueueArn"];
        var queue = await Sqs.CreateQueueAsync($"redrive-{Guid.NewGuid():N}", new()
        {
            ["RedrivePolicy"] = $"{{\"deadLetterTargetArn\":\"{arn}\",\"maxReceiveCount\":\"100\"}}",
        });
        await client.SendMessageAsync(new SendMessageRequest(queue, "kind: NotABatchJob"), default);

        await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter: null), new MemorySink());
        await run.WaitUntilDrainedAsync();

        var dead = Assert.Single(await Sqs.DrainAsync(deadLetter));
        Assert.Equal("kind: NotABatchJob", dead.Body);
        Assert.Equal("invalid_spec", dead.MessageAttributes[DeadLetterPublisher.CodeAttribute].StringValue);
    }

    [Fact]
    public async Task Without_any_dead_letter_queue_the_intake_refuses_to_start()
    {
        var queue = await Sqs.CreateQueueAsync($"no-dlq-{Guid.NewGuid():N}");
        using var sqs = Sqs.Client();

        var error = await Assert.ThrowsAsync<IntakeConfigurationException>(() => IntakeQueues.ResolveAsync(sqs, IntakeRun.OptionsFor(queue, null), default));

        Assert.Contains("no dead-letter queue", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_transient_sink_failure_leaves_the_message_for_redelivery_and_never_dead_letters_it()
    {
        var (queue, deadLetter) = await Sqs.CreateQueuePairAsync();
        using var client = Sqs.Client();
        await client.SendMessageAsync(new SendMessageRequest(queue, Specs.Yaml("flaky-api")), default);
        var failures = 2;
        var sink = new MemorySink
        {
            Before = (_, _) => Interlocked.Decrement(ref failures) >= 0
                ? throw new HttpRequestException("503 Service Unavailable")
                : Task.CompletedTask,
        };

        await using var run = IntakeRun.Start(IntakeRun.OptionsFor(queue, deadLetter, retryBaseSeconds: 1), sink);
        await run.WaitUntilDrainedAsync(seconds: 40);

        Assert.Equal(3, sink.Calls.Count);
        Assert.Single(sink.Jobs);
        Assert.Equal((2, 1), (run.Count("retried"), run.Count("created")));
        Assert.Equal(2, run.Metrics.SinkErrors.Value);
        Assert.Empty(await Sqs.DrainAsync(deadLetter));
    }

    public void Dispose() => Directory.Delete(_store, recursive: true);
}
