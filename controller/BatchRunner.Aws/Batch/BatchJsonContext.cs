using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRunner.Aws.Batch;

/// <summary>
/// Source-generated JSON metadata for AWS Batch's wire members (camelCase, absent members left out), so that
/// requests and answers need no reflection (the CLI is published as Native AOT). Every request and answer type
/// <see cref="BatchApiClient"/> sends or reads is listed here, and <see cref="ContainerProperties"/> for the hash
/// that names a job definition.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UseStringEnumConverter = true)]
[JsonSerializable(typeof(RegisterJobDefinitionRequest))]
[JsonSerializable(typeof(RegisterJobDefinitionResponse))]
[JsonSerializable(typeof(DescribeJobDefinitionsRequest))]
[JsonSerializable(typeof(DescribeJobDefinitionsResponse))]
[JsonSerializable(typeof(SubmitJobRequest))]
[JsonSerializable(typeof(SubmitJobResponse))]
[JsonSerializable(typeof(DescribeJobsRequest))]
[JsonSerializable(typeof(DescribeJobsResponse))]
[JsonSerializable(typeof(ListJobsRequest))]
[JsonSerializable(typeof(ListJobsResponse))]
[JsonSerializable(typeof(CancelJobRequest))]
[JsonSerializable(typeof(TerminateJobRequest))]
[JsonSerializable(typeof(EmptyResponse))]
[JsonSerializable(typeof(ContainerProperties))]
public sealed partial class BatchJsonContext : JsonSerializerContext;
