using System.Collections.Concurrent;
using System.Globalization;
using Amazon.SQS.Model;
using BatchRunner.Aws.Sqs;

namespace BatchRunner.Aws.Tests.Support;

/// <summary>
/// A queue in memory that hands out everything visible in one receive, as SQS may (several messages of one
/// FIFO group in one batch, which fauxqs never does), and records what the consumer did with each message.
/// </summary>
public sealed class ScriptedSqsClient : ISqsClient
{
    public const string QueueUrl = "http://127.0.0.1:1/000000000000/scripted.fifo";
    public const string DeadLetterUrl = "http://127.0.0.1:1/000000000000/scripted-dlq.fifo";

    private readonly Lock _gate = new();
    private readonly List<Message> _visible = [];

    public ScriptedSqsClient(IEnumerable<(string Group, string Body)> messages)
    {
        var sequence = 0;
        foreach (var (group, body) in messages)
        {
            sequence++;
            _visible.Add(new Message
            {
                MessageId = $"m{sequence:D2}-{group}",
                ReceiptHandle = $"r{sequence:D2}",
                Body = body,
                Attributes = new() { ["MessageGroupId"] = group, ["ApproximateReceiveCount"] = "1", ["MessageDeduplicationId"] = $"d{sequence}" },
            });
        }
    }

    /// <summary>Receipt handles deleted, in order.</summary>
    public ConcurrentQueue<string> Deleted { get; } = new();

    /// <summary>(receipt handle, seconds) of every single ChangeMessageVisibility, in order.</summary>
    public ConcurrentQueue<(string Handle, int Seconds)> VisibilityChanges { get; } = new();

    public ConcurrentQueue<SendMessageRequest> DeadLettered { get; } = new();

    public async Task<ReceiveMessageResponse> ReceiveMessageAsync(ReceiveMessageRequest request, CancellationToken cancellation)
    {
        List<Message> batch;
        lock (_gate)
        {
            batch = _visible.Take(request.MaxNumberOfMessages ?? 1).ToList();
            _visible.RemoveRange(0, batch.Count);
        }

        if (batch.Count == 0)
        {
            await Task.Delay(50, cancellation).ConfigureAwait(false);
        }

        return new ReceiveMessageResponse { Messages = batch };
    }

    public Task<ChangeMessageVisibilityResponse> ChangeMessageVisibilityAsync(ChangeMessageVisibilityRequest request, CancellationToken cancellation)
    {
        VisibilityChanges.Enqueue((request.ReceiptHandle, request.VisibilityTimeout ?? 0));
        return Task.FromResult(new ChangeMessageVisibilityResponse());
    }

    public Task<ChangeMessageVisibilityBatchResponse> ChangeMessageVisibilityBatchAsync(ChangeMessageVisibilityBatchRequest request, CancellationToken cancellation) =>
        Task.FromResult(new ChangeMessageVisibilityBatchResponse
        {
            Successful = [.. request.Entries.Select(e => new ChangeMessageVisibilityBatchResultEntry { Id = e.Id })],
        });

    /// <summary>DeleteMessageBatch calls without entries, which SQS refuses (EmptyBatchRequest).</summary>
    public int EmptyDeleteBatches => Volatile.Read(ref _emptyDeleteBatches);

    private int _emptyDeleteBatches;

    public Task<DeleteMessageBatchResponse> DeleteMessageBatchAsync(DeleteMessageBatchRequest request, CancellationToken cancellation)
    {
        if (request.Entries is not { Count: > 0 })
        {
            Interlocked.Increment(ref _emptyDeleteBatches);
            throw new Amazon.SQS.Model.EmptyBatchRequestException("The batch request doesn't contain any entries.");
        }

        foreach (var entry in request.Entries)
        {
            Deleted.Enqueue(entry.ReceiptHandle);
        }

        return Task.FromResult(new DeleteMessageBatchResponse { Successful = [.. request.Entries.Select(e => new DeleteMessageBatchResultEntry { Id = e.Id })] });
    }

    public Task<SendMessageResponse> SendMessageAsync(SendMessageRequest request, CancellationToken cancellation)
    {
        DeadLettered.Enqueue(request);
        return Task.FromResult(new SendMessageResponse { MessageId = "dead-" + DeadLettered.Count.ToString(CultureInfo.InvariantCulture) });
    }

    public Task<SendMessageBatchResponse> SendMessageBatchAsync(SendMessageBatchRequest request, CancellationToken cancellation) =>
        throw new NotSupportedException();

    public Task<GetQueueAttributesResponse> GetQueueAttributesAsync(GetQueueAttributesRequest request, CancellationToken cancellation) =>
        Task.FromResult(new GetQueueAttributesResponse { Attributes = new() { ["FifoQueue"] = "true", ["MaximumMessageSize"] = "262144" } });

    public Task<GetQueueUrlResponse> GetQueueUrlAsync(GetQueueUrlRequest request, CancellationToken cancellation) => throw new NotSupportedException();
}
