using System.Net;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.SQS;
using Amazon.SQS.Model;
using BatchRunner.Aws.Sqs;

namespace BatchRunner.Aws.Intake;

/// <summary>The dead-letter queue: where, which kind, and how large a message it takes.</summary>
public sealed record DeadLetterQueue(string Url, bool IsFifo, int MaxMessageBytes);

/// <summary>The queue the intake reads and the dead-letter queue it writes refusals to, as resolved at start.</summary>
public sealed record IntakeQueues(string Url, bool IsFifo, DeadLetterQueue DeadLetter)
{
    /// <summary>
    /// Looks the queues up: the source queue's URL (from its name if need be) and kind; the dead-letter queue from
    /// the options or the source queue's RedrivePolicy. A queue that does not exist, or no dead-letter queue at
    /// all, is a configuration mistake (<see cref="IntakeConfigurationException"/>); anything else is thrown as is.
    /// </summary>
    public static async Task<IntakeQueues> ResolveAsync(ISqsClient sqs, SqsIntakeOptions options, CancellationToken cancellation)
    {
        try
        {
            var url = !string.IsNullOrWhiteSpace(options.QueueUrl)
                ? options.QueueUrl
                : (await sqs.GetQueueUrlAsync(new GetQueueUrlRequest { QueueName = options.QueueName }, cancellation).ConfigureAwait(false)).QueueUrl;
            var attributes = await AttributesAsync(sqs, url, ["FifoQueue", "RedrivePolicy"], cancellation).ConfigureAwait(false);
            var fifo = attributes.GetValueOrDefault("FifoQueue") == "true";

            var deadLetterUrl = options.DeadLetterQueueUrl;
            if (string.IsNullOrWhiteSpace(deadLetterUrl) && options.UseRedrivePolicy && attributes.GetValueOrDefault("RedrivePolicy") is { Length: > 0 } policy)
            {
                deadLetterUrl = await RedriveTargetUrlAsync(sqs, policy, cancellation).ConfigureAwait(false);
            }

            if (string.IsNullOrWhiteSpace(deadLetterUrl))
            {
                throw new IntakeConfigurationException(
                    $"the queue {url} has no dead-letter queue: set BatchRunner:Sqs:DeadLetterQueueUrl, or give the queue a RedrivePolicy " +
                    "(refused requests are never dropped silently)");
            }

            if (string.Equals(deadLetterUrl, url, StringComparison.Ordinal))
            {
                throw new IntakeConfigurationException($"the dead-letter queue is the queue itself ({url}): refused requests would come back forever");
            }

            var deadLetter = await AttributesAsync(sqs, deadLetterUrl, ["FifoQueue", "MaximumMessageSize"], cancellation).ConfigureAwait(false);
            var maxBytes = int.TryParse(deadLetter.GetValueOrDefault("MaximumMessageSize"), out var max) ? max : IntakeRequestReader.DefaultMaxBodyBytes;
            return new IntakeQueues(url, fifo, new DeadLetterQueue(deadLetterUrl, deadLetter.GetValueOrDefault("FifoQueue") == "true", maxBytes));
        }
        catch (QueueDoesNotExistException e)
        {
            throw new IntakeConfigurationException($"a queue the intake needs does not exist: {e.Message}", e);
        }
        catch (AmazonServiceException e) when (e.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
        {
            throw new IntakeConfigurationException($"SQS refused access ({e.ErrorCode}): {e.Message}", e);
        }
    }

    private static async Task<Dictionary<string, string>> AttributesAsync(ISqsClient sqs, string url, List<string> names, CancellationToken cancellation)
    {
        var response = await sqs.GetQueueAttributesAsync(new GetQueueAttributesRequest { QueueUrl = url, AttributeNames = names }, cancellation).ConfigureAwait(false);
        return response.Attributes ?? [];
    }

    /// <summary>The URL of a RedrivePolicy's <c>deadLetterTargetArn</c> (arn:aws:sqs:REGION:ACCOUNT:NAME).</summary>
    private static async Task<string> RedriveTargetUrlAsync(ISqsClient sqs, string policy, CancellationToken cancellation)
    {
        string? arn;
        try
        {
            using var document = JsonDocument.Parse(policy);
            arn = document.RootElement.TryGetProperty("deadLetterTargetArn", out var target) ? target.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new IntakeConfigurationException($"the queue's RedrivePolicy is not JSON: {e.Message}", e);
        }

        if (arn?.Split(':') is not [_, _, "sqs", _, var account, var name])
        {
            throw new IntakeConfigurationException($"the queue's RedrivePolicy names no SQS queue: deadLetterTargetArn \"{arn}\"");
        }

        var response = await sqs.GetQueueUrlAsync(new GetQueueUrlRequest { QueueName = name, QueueOwnerAWSAccountId = account }, cancellation).ConfigureAwait(false);
        return response.QueueUrl;
    }
}

/// <summary>The intake cannot work as configured (a missing queue, no dead-letter queue, no access): retrying will not help.</summary>
public sealed class IntakeConfigurationException(string message, Exception? inner = null) : Exception(message, inner);
