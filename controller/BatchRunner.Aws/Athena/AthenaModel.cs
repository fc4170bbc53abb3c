namespace BatchRunner.Aws.Athena;

// The members of Athena's JSON 1.1 API that BatchRunner sends and reads (athena/2017-05-18), named as the
// service names them; absent members are left out of requests.

public sealed record StartQueryExecutionRequest
{
    public required string QueryString { get; init; }
    public string? ClientRequestToken { get; init; }
    public QueryExecutionContext? QueryExecutionContext { get; init; }
    public ResultConfiguration? ResultConfiguration { get; init; }
    public string? WorkGroup { get; init; }
}

public sealed record QueryExecutionContext
{
    public string? Database { get; init; }
    public string? Catalog { get; init; }
}

public sealed record ResultConfiguration
{
    public string? OutputLocation { get; init; }
}

public sealed record StartQueryExecutionResponse
{
    public string? QueryExecutionId { get; init; }
}

public sealed record QueryExecutionIdRequest
{
    public required string QueryExecutionId { get; init; }
}

public sealed record GetQueryExecutionResponse
{
    public QueryExecution? QueryExecution { get; init; }
}

public sealed record QueryExecution
{
    public string? QueryExecutionId { get; init; }
    public string? StatementType { get; init; }
    public QueryExecutionStatus? Status { get; init; }
    public QueryExecutionStatistics? Statistics { get; init; }
    public ResultConfiguration? ResultConfiguration { get; init; }
}

public sealed record QueryExecutionStatus
{
    /// <summary>QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED.</summary>
    public string? State { get; init; }
    public string? StateChangeReason { get; init; }
    public AthenaError? AthenaError { get; init; }
}

public sealed record AthenaError
{
    public int? ErrorCategory { get; init; }
    public int? ErrorType { get; init; }
    public bool? Retryable { get; init; }
    public string? ErrorMessage { get; init; }
}

public sealed record QueryExecutionStatistics
{
    public long? EngineExecutionTimeInMillis { get; init; }
    public long? DataScannedInBytes { get; init; }
    public long? TotalExecutionTimeInMillis { get; init; }
}

public sealed record GetQueryResultsRequest
{
    public required string QueryExecutionId { get; init; }
    public string? NextToken { get; init; }
    public int? MaxResults { get; init; }
}

public sealed record GetQueryResultsResponse
{
    public ResultSet? ResultSet { get; init; }
    public string? NextToken { get; init; }
    public long? UpdateCount { get; init; }
}

public sealed record ResultSet
{
    public IReadOnlyList<ResultRow>? Rows { get; init; }
    public ResultSetMetadata? ResultSetMetadata { get; init; }
}

public sealed record ResultRow
{
    public IReadOnlyList<Datum>? Data { get; init; }
}

public sealed record Datum
{
    public string? VarCharValue { get; init; }
}

public sealed record ResultSetMetadata
{
    public IReadOnlyList<ColumnInfo>? ColumnInfo { get; init; }
}

public sealed record ColumnInfo
{
    public required string Name { get; init; }
    public required string Type { get; init; }
}

public sealed record StopQueryExecutionResponse;
