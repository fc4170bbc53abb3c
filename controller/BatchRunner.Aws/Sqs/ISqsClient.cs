using Amazon.SQS.Model;

namespace BatchRunner.Aws.Sqs;

/// <summary>
/// The SQS calls BatchRunner makes, and nothing else. The intake and <c>batchrunner submit</c> talk to SQS only
/// through this, so a test can put a fault (a lost delete, a slow call) between them and a real SQS-compatible
/// server; <see cref="AwsSqsClient"/> is the real SDK behind it.
/// </summary>
public interface ISqsClient
{
    Task<ReceiveMessageResponse> ReceiveMessageAsync(ReceiveMessageRequest request, CancellationToken cancellation);

    Task<ChangeMessageVisibilityResponse> ChangeMessageVisibilityAsync(ChangeMessageVisibilityRequest request, CancellationToken cancellation);

    Task<ChangeMessageVisibilityBatchResponse> ChangeMessageVisibilityBatchAsync(ChangeMessageVisibilityBatchRequest request, CancellationToken cancellation);

    Task<DeleteMessageBatchResponse> DeleteMessageBatchAsync(DeleteMessageBatchRequest request, CancellationToken cancellation);

    Task<SendMessageResponse> SendMessageAsync(SendMessageRequest request, CancellationToken cancellation);

    Task<SendMessageBatchResponse> SendMessageBatchAsync(SendMessageBatchRequest request, CancellationToken cancellation);

    Task<GetQueueAttributesResponse> GetQueueAttributesAsync(GetQueueAttributesRequest request, CancellationToken cancellation);

    Task<GetQueueUrlResponse> GetQueueUrlAsync(GetQueueUrlRequest request, CancellationToken cancellation);
}
