using Amazon.SQS.Model;
using BatchRunner.Aws.Sqs;

namespace BatchRunner.Aws.Tests.Support;

/// <summary>A real client with hooks: a test breaks one call (a crash before the delete) and keeps the rest real.</summary>
public sealed class DelegatingSqsClient(ISqsClient inner) : ISqsClient
{
    public Func<DeleteMessageBatchRequest, Task<DeleteMessageBatchResponse>>? OnDelete { get; set; }

    private int _receiveCalls;
    private int _deleteBatchCalls;
    private int _visibilityBatchCalls;
    private int _sendBatchCalls;

    public int SendBatchCalls => Volatile.Read(ref _sendBatchCalls);

    public int ReceiveCalls => Volatile.Read(ref _receiveCalls);

    public int DeleteBatchCalls => Volatile.Read(ref _deleteBatchCalls);

    public int VisibilityBatchCalls => Volatile.Read(ref _visibilityBatchCalls);

    public Task<ReceiveMessageResponse> ReceiveMessageAsync(ReceiveMessageRequest request, CancellationToken cancellation)
    {
        Interlocked.Increment(ref _receiveCalls);
        return inner.ReceiveMessageAsync(request, cancellation);
    }

    public Task<ChangeMessageVisibilityResponse> ChangeMessageVisibilityAsync(ChangeMessageVisibilityRequest request, CancellationToken cancellation) =>
        inner.ChangeMessageVisibilityAsync(request, cancellation);

    public Task<ChangeMessageVisibilityBatchResponse> ChangeMessageVisibilityBatchAsync(ChangeMessageVisibilityBatchRequest request, CancellationToken cancellation)
    {
        Interlocked.Increment(ref _visibilityBatchCalls);
        return inner.ChangeMessageVisibilityBatchAsync(request, cancellation);
    }

    public Task<DeleteMessageBatchResponse> DeleteMessageBatchAsync(DeleteMessageBatchRequest request, CancellationToken cancellation)
    {
        Interlocked.Increment(ref _deleteBatchCalls);
        return OnDelete is { } hook ? hook(request) : inner.DeleteMessageBatchAsync(request, cancellation);
    }

    public Task<SendMessageResponse> SendMessageAsync(SendMessageRequest request, CancellationToken cancellation) => inner.SendMessageAsync(request, cancellation);

    public Task<SendMessageBatchResponse> SendMessageBatchAsync(SendMessageBatchRequest request, CancellationToken cancellation)
    {
        Interlocked.Increment(ref _sendBatchCalls);
        return inner.SendMessageBatchAsync(request, cancellation);
    }

    public Task<GetQueueAttributesResponse> GetQueueAttributesAsync(GetQueueAttributesRequest request, CancellationToken cancellation) =>
        inner.GetQueueAttributesAsync(request, cancellation);

    public Task<GetQueueUrlResponse> GetQueueUrlAsync(GetQueueUrlRequest request, CancellationToken cancellation) => inner.GetQueueUrlAsync(request, cancellation);
}
