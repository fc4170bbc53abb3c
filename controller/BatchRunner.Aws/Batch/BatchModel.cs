namespace BatchRunner.Aws.Batch;

// The members of the AWS Batch API (2016-08-10) BatchRunner sends and reads, named as the API names them
// (camelCase on the wire). Only what is used is modelled; tests validate every request against botocore's model.
// Answer members with a default other than null have a setter, not init: source-generated metadata sets every
// init-only member, absent ones to null, which would lose the default (dotnet/runtime#84484).

public sealed record NameValue(string Name, string Value);

public sealed record NameValues(string Name, IReadOnlyList<string> Values);

public sealed record ResourceRequirement(string Type, string Value);

public sealed record LogConfiguration(string LogDriver, IReadOnlyDictionary<string, string>? Options = null);

public sealed record NetworkConfiguration(string AssignPublicIp);

public sealed record FargatePlatformConfiguration(string PlatformVersion);

public sealed record ContainerProperties
{
    public string? Image { get; init; }
    public IReadOnlyList<string>? Command { get; init; }
    public string? JobRoleArn { get; init; }
    public string? ExecutionRoleArn { get; init; }
    public IReadOnlyList<NameValue>? Environment { get; init; }
    public IReadOnlyList<ResourceRequirement>? ResourceRequirements { get; init; }
    public LogConfiguration? LogConfiguration { get; init; }
    public NetworkConfiguration? NetworkConfiguration { get; init; }
    public FargatePlatformConfiguration? FargatePlatformConfiguration { get; init; }
}

public sealed record EvaluateOnExit
{
    public string? OnStatusReason { get; init; }
    public string? OnReason { get; init; }
    public string? OnExitCode { get; init; }
    public required string Action { get; init; }
}

public sealed record RetryStrategy(int? Attempts, IReadOnlyList<EvaluateOnExit>? EvaluateOnExit = null);

public sealed record JobTimeout(int? AttemptDurationSeconds);

public sealed record RegisterJobDefinitionRequest
{
    public required string JobDefinitionName { get; init; }
    public string Type { get; init; } = "container";
    public ContainerProperties? ContainerProperties { get; init; }
    public IReadOnlyList<string>? PlatformCapabilities { get; init; }
    public bool? PropagateTags { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
}

public sealed record RegisterJobDefinitionResponse(string JobDefinitionName, string JobDefinitionArn, int Revision);

public sealed record DescribeJobDefinitionsRequest
{
    public IReadOnlyList<string>? JobDefinitions { get; init; }
    public int? MaxResults { get; init; }
    public string? JobDefinitionName { get; init; }
    public string? Status { get; init; }
    public string? NextToken { get; init; }
}

public sealed record JobDefinition
{
    public string JobDefinitionName { get; set; } = "";
    public string JobDefinitionArn { get; set; } = "";
    public int Revision { get; init; }
    public string? Status { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
}

public sealed record DescribeJobDefinitionsResponse(IReadOnlyList<JobDefinition>? JobDefinitions, string? NextToken);

public sealed record ArrayProperties(int? Size);

public sealed record ContainerOverrides
{
    public IReadOnlyList<string>? Command { get; init; }
    public IReadOnlyList<NameValue>? Environment { get; init; }
    public IReadOnlyList<ResourceRequirement>? ResourceRequirements { get; init; }
}

public sealed record SubmitJobRequest
{
    public required string JobName { get; init; }
    public required string JobQueue { get; init; }
    public required string JobDefinition { get; init; }
    public string? ShareIdentifier { get; init; }
    public int? SchedulingPriorityOverride { get; init; }
    public ArrayProperties? ArrayProperties { get; init; }
    public ContainerOverrides? ContainerOverrides { get; init; }
    public RetryStrategy? RetryStrategy { get; init; }
    public bool? PropagateTags { get; init; }
    public JobTimeout? Timeout { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
}

public sealed record SubmitJobResponse(string JobName, string JobId, string? JobArn = null);

public sealed record DescribeJobsRequest(IReadOnlyList<string> Jobs);

public sealed record AttemptContainerDetail(int? ExitCode = null, string? Reason = null, string? LogStreamName = null);

public sealed record AttemptDetail(AttemptContainerDetail? Container = null, long? StartedAt = null, long? StoppedAt = null, string? StatusReason = null);

public sealed record ContainerDetail(int? ExitCode = null, string? Reason = null, string? LogStreamName = null);

public sealed record ArrayPropertiesDetail(IReadOnlyDictionary<string, int>? StatusSummary = null, int? Size = null, int? Index = null);

public sealed record JobDetail
{
    public string JobName { get; set; } = "";
    public string JobId { get; set; } = "";
    public string? JobArn { get; init; }
    public string JobQueue { get; set; } = "";
    public string Status { get; set; } = "";
    public string? StatusReason { get; init; }
    public long? CreatedAt { get; init; }
    public long? StartedAt { get; init; }
    public long? StoppedAt { get; init; }
    public string? JobDefinition { get; init; }
    public IReadOnlyList<AttemptDetail>? Attempts { get; init; }
    public ContainerDetail? Container { get; init; }
    public ArrayPropertiesDetail? ArrayProperties { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
}

public sealed record DescribeJobsResponse(IReadOnlyList<JobDetail>? Jobs);

public sealed record ListJobsRequest
{
    public string? JobQueue { get; init; }
    public string? ArrayJobId { get; init; }
    public string? JobStatus { get; init; }
    public int? MaxResults { get; init; }
    public string? NextToken { get; init; }
    public IReadOnlyList<NameValues>? Filters { get; init; }
}

public sealed record ContainerSummary(int? ExitCode = null, string? Reason = null);

public sealed record ArrayPropertiesSummary(int? Size = null, int? Index = null);

public sealed record JobSummary
{
    public string JobId { get; set; } = "";
    public string JobName { get; set; } = "";
    public string? JobArn { get; init; }
    public long? CreatedAt { get; init; }
    public string? Status { get; init; }
    public string? StatusReason { get; init; }
    public long? StartedAt { get; init; }
    public long? StoppedAt { get; init; }
    public ContainerSummary? Container { get; init; }
    public ArrayPropertiesSummary? ArrayProperties { get; init; }
}

public sealed record ListJobsResponse(IReadOnlyList<JobSummary>? JobSummaryList, string? NextToken);

public sealed record CancelJobRequest(string JobId, string Reason);

public sealed record TerminateJobRequest(string JobId, string Reason);

/// <summary>The empty answer of CancelJob and TerminateJob.</summary>
public sealed record EmptyResponse;

/// <summary>The states of an AWS Batch job, in the order a job moves through them.</summary>
public static class JobStates
{
    public const string Submitted = "SUBMITTED";
    public const string Pending = "PENDING";
    public const string Runnable = "RUNNABLE";
    public const string Starting = "STARTING";
    public const string Running = "RUNNING";
    public const string Succeeded = "SUCCEEDED";
    public const string Failed = "FAILED";

    public static readonly IReadOnlyList<string> All = [Submitted, Pending, Runnable, Starting, Running, Succeeded, Failed];

    public static bool IsFinished(string? status) => status is Succeeded or Failed;
}
