using System.Text.Json.Serialization;

namespace BatchRunner.Aws.Athena;

/// <summary>
/// Source-generated JSON metadata for Athena's wire members (PascalCase as the service names them, read without
/// regard to case, absent members left out), so that requests and answers need no reflection (Native AOT). Every
/// request and answer type <see cref="AthenaApiClient"/> sends or reads is listed here.
/// </summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UseStringEnumConverter = true)]
[JsonSerializable(typeof(StartQueryExecutionRequest))]
[JsonSerializable(typeof(StartQueryExecutionResponse))]
[JsonSerializable(typeof(QueryExecutionIdRequest))]
[JsonSerializable(typeof(GetQueryExecutionResponse))]
[JsonSerializable(typeof(GetQueryResultsRequest))]
[JsonSerializable(typeof(GetQueryResultsResponse))]
[JsonSerializable(typeof(StopQueryExecutionResponse))]
public sealed partial class AthenaJsonContext : JsonSerializerContext;
