using System.Globalization;
using System.Text;
using Amazon.SQS.Model;
using BatchRunner.Aws.Sqs;

namespace BatchRunner.Aws.Intake;

/// <summary>
/// Sends a refused message to the dead-letter queue: its body as it came (cut to fit the dead-letter queue's
/// size limit if need be), its message attributes, and the reason. The original is deleted only once this
/// succeeded. On a FIFO dead-letter queue the original message id is the deduplication id, so a resend after a
/// crash within five minutes does not land twice.
/// </summary>
internal sealed class DeadLetterPublisher(ISqsClient sqs, DeadLetterQueue target)
{
    /// <summary>The reason, in words: the parser's errors as the CLI prints them, or the guard's, the size, the encoding.</summary>
    public const string ReasonAttribute = "BatchRunnerRejectReason";

    /// <summary>The reason's code (<see cref="Rejection.CodeName"/>), for filtering and redrive decisions.</summary>
    public const string CodeAttribute = "BatchRunnerRejectCode";

    /// <summary>The id of the message as it was on the source queue.</summary>
    public const string SourceMessageIdAttribute = "BatchRunnerSourceMessageId";

    /// <summary>Set (to the original size in bytes) when the body was cut to fit the dead-letter queue.</summary>
    public const string TruncatedFromAttribute = "BatchRunnerBodyTruncatedFrom";

    private const int MaxAttributes = 10; // SQS's limit per message
    private const int MaxReasonChars = 4096;

    public DeadLetterQueue Target { get; } = target;

    public async Task<string> SendAsync(Lease lease, Rejection rejection, CancellationToken cancellation)
    {
        var attributes = new Dictionary<string, MessageAttributeValue>(StringComparer.Ordinal)
        {
            [ReasonAttribute] = Text(rejection.Reason.Length <= MaxReasonChars ? rejection.Reason : rejection.Reason[..MaxReasonChars] + "…"),
            [CodeAttribute] = Text(rejection.CodeName),
            [SourceMessageIdAttribute] = Text(lease.MessageId),
        };

        // The producer's own attributes go along while SQS's limit of ten leaves room (ours come first).
        foreach (var (name, value) in lease.Message.MessageAttributes ?? [])
        {
            if (attributes.Count >= MaxAttributes - 1)
            {
                break;
            }

            attributes.TryAdd(name, value);
        }

        var body = lease.Message.Body ?? "";
        var budget = Target.MaxMessageBytes - AttributeBytes(attributes) - 64;
        var bodyBytes = Encoding.UTF8.GetByteCount(body);
        if (bodyBytes > budget)
        {
            body = Truncate(body, Math.Max(budget, 1));
            attributes[TruncatedFromAttribute] = new MessageAttributeValue { DataType = "Number", StringValue = bodyBytes.ToString(CultureInfo.InvariantCulture) };
        }

        var request = new SendMessageRequest
        {
            QueueUrl = Target.Url,
            MessageBody = body.Length == 0 ? " " : body, // SQS refuses an empty body; a blank one says the same
            MessageAttributes = attributes,
        };
        if (Target.IsFifo)
        {
            request.MessageGroupId = lease.GroupId ?? "batchrunner-rejected";
            request.MessageDeduplicationId = lease.MessageId;
        }

        var response = await sqs.SendMessageAsync(request, cancellation).ConfigureAwait(false);
        return response.MessageId;
    }

    private static MessageAttributeValue Text(string value) => new() { DataType = "String", StringValue = value };

    private static int AttributeBytes(Dictionary<string, MessageAttributeValue> attributes) =>
        attributes.Sum(a => Encoding.UTF8.GetByteCount(a.Key) + Encoding.UTF8.GetByteCount(a.Value.DataType ?? "")
            + Encoding.UTF8.GetByteCount(a.Value.StringValue ?? "") + (int)(a.Value.BinaryValue?.Length ?? 0)) + 32; // + the truncation attribute

    /// <summary>The longest prefix of at most <paramref name="maxBytes"/> UTF-8 bytes that does not split a character.</summary>
    private static string Truncate(string text, int maxBytes)
    {
        var bytes = 0;
        var i = 0;
        while (i < text.Length)
        {
            var width = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            var size = Encoding.UTF8.GetByteCount(text.AsSpan(i, width));
            if (bytes + size > maxBytes)
            {
                break;
            }

            bytes += size;
            i += width;
        }

        return text[..i];
    }
}
