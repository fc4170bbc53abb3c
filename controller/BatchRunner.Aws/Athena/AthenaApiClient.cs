using BatchRunner.Aws.Protocol;

namespace BatchRunner.Aws.Athena;

/// <summary>
/// Athena's API over the JSON 1.1 protocol client (AWSSDK.Athena is not on the registry here): signing,
/// retries of throttling and 5xx, and typed errors are <see cref="AwsJsonClient"/>'s.
/// </summary>
public sealed class AthenaApiClient(AwsJsonClient client) : IAthenaApi, IDisposable
{
    private const string Prefix = "AmazonAthena.";

    /// <summary>A client of Athena at the endpoint and region the options name (or the SDK's resolution).</summary>
    public static AthenaApiClient Create(AthenaOptions options, HttpClient? http = null, IAwsCredentialSource? credentials = null, TimeProvider? time = null) =>
        new(new AwsJsonClient(
            new AwsServiceOptions { ServiceId = "athena", SigningName = "athena", Region = options.Region, EndpointUrl = options.EndpointUrl },
            AwsJsonClient.PascalCaseJson(), http, credentials, time));

    public Task<StartQueryExecutionResponse> StartQueryExecutionAsync(StartQueryExecutionRequest request, CancellationToken cancellation) =>
        client.SendJson11Async<StartQueryExecutionRequest, StartQueryExecutionResponse>(Prefix + "StartQueryExecution", request, cancellation);

    public Task<GetQueryExecutionResponse> GetQueryExecutionAsync(string queryExecutionId, CancellationToken cancellation) =>
        client.SendJson11Async<QueryExecutionIdRequest, GetQueryExecutionResponse>(
            Prefix + "GetQueryExecution", new QueryExecutionIdRequest { QueryExecutionId = queryExecutionId }, cancellation);

    public Task<GetQueryResultsResponse> GetQueryResultsAsync(GetQueryResultsRequest request, CancellationToken cancellation) =>
        client.SendJson11Async<GetQueryResultsRequest, GetQueryResultsResponse>(Prefix + "GetQueryResults", request, cancellation);

    public Task StopQueryExecutionAsync(string queryExecutionId, CancellationToken cancellation) =>
        client.SendJson11Async<QueryExecutionIdRequest, StopQueryExecutionResponse>(
            Prefix + "StopQueryExecution", new QueryExecutionIdRequest { QueryExecutionId = queryExecutionId }, cancellation);

    public void Dispose() => client.Dispose();
}
