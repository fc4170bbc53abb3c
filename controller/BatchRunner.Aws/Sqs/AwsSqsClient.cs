using Amazon.SQS;
using Amazon.SQS.Model;

namespace BatchRunner.Aws.Sqs;

/// <summary>The real SQS client behind <see cref="ISqsClient"/>: each call goes straight to the SDK.</summary>
public sealed class AwsSqsClient(IAmazonSQS sqs) : ISqsClient, IDisposable
{
    /// <summary>The SDK client, for what its configuration says (the endpoint it resolved, the region).</summary>
    public IAmazonSQS Sdk { get; } = sqs;

    public Task<ReceiveMessageResponse> ReceiveMessageAsync(ReceiveMessageRequest request, CancellationToken cancellation) =>
        Sdk.ReceiveMessageAsync(request, cancellation);

    public Task<ChangeMessageVisibilityResponse> ChangeMessageVisibilityAsync(ChangeMessageVisibilityRequest request, CancellationToken cancellation) =>
        Sdk.ChangeMessageVisibilityAsync(request, cancellation);

    public Task<ChangeMessageVisibilityBatchResponse> ChangeMessageVisibilityBatchAsync(ChangeMessageVisibilityBatchRequest request, CancellationToken cancellation) =>
        Sdk.ChangeMessageVisibilityBatchAsync(request, cancellation);

    public Task<DeleteMessageBatchResponse> DeleteMessageBatchAsync(DeleteMessageBatchRequest request, CancellationToken cancellation) =>
        Sdk.DeleteMessageBatchAsync(request, cancellation);

    public Task<SendMessageResponse> SendMessageAsync(SendMessageRequest request, CancellationToken cancellation) =>
        Sdk.SendMessageAsync(request, cancellation);

    public Task<SendMessageBatchResponse> SendMessageBatchAsync(SendMessageBatchRequest request, CancellationToken cancellation) =>
        Sdk.SendMessageBatchAsync(request, cancellation);

    public Task<GetQueueAttributesResponse> GetQueueAttributesAsync(GetQueueAttributesRequest request, CancellationToken cancellation) =>
        Sdk.GetQueueAttributesAsync(request, cancellation);

    public Task<GetQueueUrlResponse> GetQueueUrlAsync(GetQueueUrlRequest request, CancellationToken cancellation) =>
        Sdk.GetQueueUrlAsync(request, cancellation);

    public void Dispose() => Sdk.Dispose();
}
