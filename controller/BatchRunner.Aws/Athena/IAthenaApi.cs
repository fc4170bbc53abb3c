namespace BatchRunner.Aws.Athena;

/// <summary>The four Athena operations a query needs; <see cref="AthenaQueryRunner"/> consumes it.</summary>
public interface IAthenaApi
{
    Task<StartQueryExecutionResponse> StartQueryExecutionAsync(StartQueryExecutionRequest request, CancellationToken cancellation);

    Task<GetQueryExecutionResponse> GetQueryExecutionAsync(string queryExecutionId, CancellationToken cancellation);

    Task<GetQueryResultsResponse> GetQueryResultsAsync(GetQueryResultsRequest request, CancellationToken cancellation);

    Task StopQueryExecutionAsync(string queryExecutionId, CancellationToken cancellation);
}
