using System.ComponentModel.DataAnnotations;
using BatchRunner.Aws.Sqs;

namespace BatchRunner.Aws.Intake;

/// <summary>
/// <c>BatchRunner:Sqs</c>: the queue the controller takes BatchJob requests from, and how. Region, endpoint and
/// credentials follow the AWS SDK's conventions (see <see cref="SqsConnection"/>) unless set here.
/// </summary>
public sealed class SqsIntakeOptions : IValidatableObject
{
    public const string Section = "BatchRunner:Sqs";

    public bool Enabled { get; init; }

    /// <summary>The queue's URL; or give <see cref="QueueName"/> and let the URL be looked up.</summary>
    public string? QueueUrl { get; init; }

    public string? QueueName { get; init; }

    /// <summary>Overrides the SDK's region resolution (<c>AWS_REGION</c>, the profile, instance metadata).</summary>
    public string? Region { get; init; }

    /// <summary>Overrides the SDK's endpoint resolution (<c>AWS_ENDPOINT_URL_SQS</c>, <c>AWS_ENDPOINT_URL</c>).</summary>
    public string? EndpointUrl { get; init; }

    /// <summary>Where refused requests go. When empty, the queue's RedrivePolicy target (see <see cref="UseRedrivePolicy"/>).</summary>
    public string? DeadLetterQueueUrl { get; init; }

    /// <summary>
    /// Without <see cref="DeadLetterQueueUrl"/>, send refused requests to the dead-letter queue of the queue's
    /// RedrivePolicy. With neither the intake does not start: it never drops a request silently.
    /// </summary>
    public bool UseRedrivePolicy { get; init; } = true;

    /// <summary>How long a received message stays invisible; extended at half of it while the message is processed.</summary>
    [Range(2, 43_200)]
    public int VisibilityTimeoutSeconds { get; init; } = 30;

    /// <summary>Long-poll wait of each ReceiveMessage.</summary>
    [Range(0, 20)]
    public int WaitTimeSeconds { get; init; } = 20;

    /// <summary>ReceiveMessage calls kept open at once: two, so one is on the wire while the other's messages are handed out.</summary>
    [Range(1, 16)]
    public int Receivers { get; init; } = 2;

    /// <summary>
    /// Messages processed at once (on a FIFO queue, one group's messages always one after another). Recording is
    /// bound by the sink's latency (an fsync, an API call), not by CPU, so many at once is what gives throughput.
    /// </summary>
    [Range(1, 1_000)]
    public int MaxConcurrency { get; init; } = 64;

    /// <summary>Largest body accepted, in UTF-8 bytes; larger ones are dead-lettered.</summary>
    [Range(1_024, 1_048_576)]
    public int MaxBodyBytes { get; init; } = IntakeRequestReader.DefaultMaxBodyBytes;

    /// <summary>Longest a processed message waits for its DeleteMessageBatch (sent sooner when 10 are waiting or nothing else is in progress).</summary>
    [Range(1, 10_000)]
    public int DeleteFlushMilliseconds { get; init; } = 100;

    /// <summary>First delay before a message whose sink failed transiently comes back; doubles with each receive.</summary>
    [Range(1, 3_600)]
    public int RetryBaseDelaySeconds { get; init; } = 5;

    [Range(1, 43_200)]
    public int RetryMaxDelaySeconds { get; init; } = 300;

    /// <summary>On shutdown, how long messages being processed may take to finish before they are released.</summary>
    [Range(0, 600)]
    public int ShutdownGraceSeconds { get; init; } = 20;

    public TenantGuardOptions Tenants { get; init; } = new();

    public SqsConnection Connection => new(Region, EndpointUrl);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enabled)
        {
            yield break;
        }

        if (string.IsNullOrWhiteSpace(QueueUrl) == string.IsNullOrWhiteSpace(QueueName))
        {
            yield return new ValidationResult("give one of QueueUrl and QueueName", [nameof(QueueUrl), nameof(QueueName)]);
        }

        if (string.IsNullOrWhiteSpace(DeadLetterQueueUrl) && !UseRedrivePolicy)
        {
            yield return new ValidationResult(
                "refused requests need a dead-letter queue: set DeadLetterQueueUrl, or UseRedrivePolicy with a RedrivePolicy on the queue",
                [nameof(DeadLetterQueueUrl)]);
        }

        if (RetryMaxDelaySeconds < RetryBaseDelaySeconds)
        {
            yield return new ValidationResult($"RetryMaxDelaySeconds ({RetryMaxDelaySeconds}) must be >= RetryBaseDelaySeconds ({RetryBaseDelaySeconds})", [nameof(RetryMaxDelaySeconds)]);
        }

        // Nested options are not validated by data annotations on their own.
        foreach (var result in Tenants.ValidateSection())
        {
            yield return result.ErrorMessage?.StartsWith("Tenants:", StringComparison.Ordinal) == true
                ? result
                : new ValidationResult("Tenants:" + string.Join(",", result.MemberNames) + " " + result.ErrorMessage, result.MemberNames);
        }
    }
}
