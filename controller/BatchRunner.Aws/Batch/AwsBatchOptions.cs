using System.ComponentModel.DataAnnotations;

namespace BatchRunner.Aws.Batch;

/// <summary>
/// <c>BatchRunner:AwsBatch</c>: where and as whom BatchJobs with <c>spec.backend: aws-batch</c> run. Region and
/// endpoint follow the AWS SDK's conventions when empty (<c>AWS_REGION</c>, <c>AWS_ENDPOINT_URL_BATCH</c>);
/// credentials always come from the SDK's default chain and are never part of these settings.
/// </summary>
public sealed class AwsBatchOptions : IValidatableObject
{
    public const string Section = "BatchRunner:AwsBatch";

    public bool Enabled { get; init; }

    /// <summary>The job queue (name or ARN) of a Fargate compute environment.</summary>
    public string? JobQueue { get; init; }

    /// <summary>
    /// A job queue over Fargate Spot. BatchJobs labelled or annotated <c>batchrunner.io/capacity: spot</c> go there;
    /// without it they run on <see cref="JobQueue"/>.
    /// </summary>
    public string? SpotJobQueue { get; init; }

    /// <summary>The role ECS uses to pull the image and write logs (Fargate requires one).</summary>
    public string? ExecutionRoleArn { get; init; }

    /// <summary>The role the workload runs as: it needs to write the results store.</summary>
    public string? JobRoleArn { get; init; }

    public string? Region { get; init; }

    public string? EndpointUrl { get; init; }

    /// <summary>A CloudWatch Logs group for the containers' output (awslogs); empty: the Batch default group.</summary>
    public string? LogGroup { get; init; }

    /// <summary>The share identifier on a fair-share job queue (jobs on such a queue must carry one).</summary>
    public string? ShareIdentifier { get; init; }

    /// <summary>
    /// On a fair-share job queue, let AWS Batch's own scheduler share it by tenant: each BatchJob's namespace is its
    /// share identifier, and its priority its scheduling priority (<see cref="AwsFairShare"/>). Takes the place of a
    /// fixed <see cref="ShareIdentifier"/>.
    /// </summary>
    public bool FairShareByNamespace { get; init; }

    /// <summary>SubmitJob calls per second, at most: AWS's account-wide limit is 50.</summary>
    [Range(0.1, 50)]
    public double SubmitJobsPerSecond { get; init; } = 50;

    /// <summary>Whether Fargate tasks get a public IP (needed to pull from public registries in subnets without a NAT).</summary>
    public bool AssignPublicIp { get; init; }

    /// <summary>The Fargate platform version; empty: LATEST.</summary>
    public string? PlatformVersion { get; init; }

    /// <summary>
    /// The results store (<c>BatchRunner:Results:Uri</c>) for BatchJobs without <c>spec.results.uri</c>. Bound by
    /// the host from that section, not from this one.
    /// </summary>
    public string? DefaultResultsUri { get; set; }

    /// <summary>Seconds between looks at a run while it changes; doubling while it does not, up to <see cref="MaxPollSeconds"/>.</summary>
    [Range(0.01, 3600)]
    public double PollSeconds { get; init; } = 5;

    [Range(0.01, 3600)]
    public double MaxPollSeconds { get; init; } = 60;

    /// <summary>The dispatcher's pace from these settings.</summary>
    public AwsBatchTimings Timings() => AwsBatchTimings.Default with
    {
        FirstPoll = TimeSpan.FromSeconds(PollSeconds),
        MaxPoll = TimeSpan.FromSeconds(Math.Max(PollSeconds, MaxPollSeconds)),
    };

    /// <summary>Path of the results wrapper inside workload images.</summary>
    public string ExecPath { get; init; } = "/opt/batchrunner/batchrunner-exec";

    /// <summary>
    /// The settings from environment variables as .NET configuration spells them (<c>BatchRunner__AwsBatch__JobQueue</c>,
    /// and <c>BatchRunner__Results__Uri</c> for the default store): how the CLI is configured, like the controller.
    /// </summary>
    /// <exception cref="FormatException">A value that is not what its setting takes, naming the variable.</exception>
    public static AwsBatchOptions FromEnvironment(Func<string, string?> environment)
    {
        string? Text(string name) => environment("BatchRunner__AwsBatch__" + name) is { Length: > 0 } value ? value.Trim() : null;
        var rate = Text(nameof(SubmitJobsPerSecond));
        double Seconds(string name, double fallback) => Text(name) is not { } text ? fallback
            : double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) && value is >= 0.01 and <= 3600 ? value
            : throw new FormatException($"BatchRunner__AwsBatch__{name}: expected seconds from 0.01 to 3600, got \"{text}\"");
        var publicIp = Text(nameof(AssignPublicIp));
        var fairShare = Text(nameof(FairShareByNamespace));
        return new AwsBatchOptions
        {
            Enabled = true,
            JobQueue = Text(nameof(JobQueue)),
            SpotJobQueue = Text(nameof(SpotJobQueue)),
            ExecutionRoleArn = Text(nameof(ExecutionRoleArn)),
            JobRoleArn = Text(nameof(JobRoleArn)),
            Region = Text(nameof(Region)),
            EndpointUrl = Text(nameof(EndpointUrl)),
            LogGroup = Text(nameof(LogGroup)),
            ShareIdentifier = Text(nameof(ShareIdentifier)),
            PlatformVersion = Text(nameof(PlatformVersion)),
            ExecPath = Text(nameof(ExecPath)) ?? "/opt/batchrunner/batchrunner-exec",
            PollSeconds = Seconds(nameof(PollSeconds), 5),
            MaxPollSeconds = Seconds(nameof(MaxPollSeconds), 60),
            SubmitJobsPerSecond = rate is null ? 50
                : double.TryParse(rate, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var perSecond) && perSecond is > 0 and <= 50 ? perSecond
                : throw new FormatException($"BatchRunner__AwsBatch__SubmitJobsPerSecond: expected a number from 0.1 to 50, got \"{rate}\""),
            AssignPublicIp = publicIp is not null && (bool.TryParse(publicIp, out var flag) ? flag
                : throw new FormatException($"BatchRunner__AwsBatch__AssignPublicIp: expected true or false, got \"{publicIp}\"")),
            FairShareByNamespace = fairShare is not null && (bool.TryParse(fairShare, out var byNamespace) ? byNamespace
                : throw new FormatException($"BatchRunner__AwsBatch__FairShareByNamespace: expected true or false, got \"{fairShare}\"")),
            DefaultResultsUri = environment("BatchRunner__Results__Uri") is { Length: > 0 } uri ? uri.Trim() : null,
        };
    }

    /// <summary>What is missing for BatchJobs to be dispatched; empty when nothing is.</summary>
    public IReadOnlyList<string> Missing()
    {
        var missing = new List<string>();
        if (string.IsNullOrWhiteSpace(JobQueue))
        {
            missing.Add($"{Section}:JobQueue (the Fargate job queue)");
        }

        if (string.IsNullOrWhiteSpace(ExecutionRoleArn))
        {
            missing.Add($"{Section}:ExecutionRoleArn (Fargate needs an execution role)");
        }

        return missing;
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enabled)
        {
            yield break;
        }

        foreach (var missing in Missing())
        {
            yield return new ValidationResult($"{missing} is required when {Section}:Enabled is true", [nameof(JobQueue)]);
        }

        if (!string.IsNullOrEmpty(EndpointUrl) && !Uri.TryCreate(EndpointUrl, UriKind.Absolute, out _))
        {
            yield return new ValidationResult($"{Section}:EndpointUrl is not an absolute URL: '{EndpointUrl}'", [nameof(EndpointUrl)]);
        }
    }

    /// <summary>What a log line may say: queues and where; roles are not secrets, but credentials never appear here.</summary>
    public override string ToString() =>
        $"queue {JobQueue}{(string.IsNullOrEmpty(SpotJobQueue) ? "" : $", spot queue {SpotJobQueue}")}, " +
        $"region {(string.IsNullOrEmpty(Region) ? "from the SDK's configuration" : Region)}, " +
        $"endpoint {(string.IsNullOrEmpty(EndpointUrl) ? "from the SDK's configuration" : EndpointUrl)}";
}
