using BatchRunner.Aws.Protocol;

namespace BatchRunner.Aws.Batch;

/// <summary><see cref="IBatchApi"/> over AWS Batch's REST-JSON protocol (<c>POST /v1/…</c>, camelCase members).</summary>
public sealed class BatchApiClient(AwsJsonClient client) : IBatchApi, IDisposable
{
    /// <summary>The settings of the Batch service for <see cref="AwsJsonClient"/>: signing name and endpoint variable <c>batch</c>.</summary>
    public static AwsServiceOptions ServiceOptions(string? region, string? endpointUrl) =>
        new() { ServiceId = "batch", SigningName = "batch", Region = region, EndpointUrl = endpointUrl };

    public AwsJsonClient Client { get; } = client;

    public Task<RegisterJobDefinitionResponse> RegisterJobDefinitionAsync(RegisterJobDefinitionRequest request, CancellationToken cancellation) =>
        Post<RegisterJobDefinitionRequest, RegisterJobDefinitionResponse>("/v1/registerjobdefinition", request, cancellation);

    public Task<DescribeJobDefinitionsResponse> DescribeJobDefinitionsAsync(DescribeJobDefinitionsRequest request, CancellationToken cancellation) =>
        Post<DescribeJobDefinitionsRequest, DescribeJobDefinitionsResponse>("/v1/describejobdefinitions", request, cancellation);

    /// <summary>Not idempotent (no client token): sent again only when Batch surely did not act on it; the dispatcher looks for the job by name before submitting again.</summary>
    public Task<SubmitJobResponse> SubmitJobAsync(SubmitJobRequest request, CancellationToken cancellation) =>
        Client.SendRestJsonAsync<SubmitJobRequest, SubmitJobResponse>(HttpMethod.Post, "/v1/submitjob", request, cancellation, idempotent: false);

    public Task<DescribeJobsResponse> DescribeJobsAsync(DescribeJobsRequest request, CancellationToken cancellation)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(request.Jobs.Count, 100);
        return Post<DescribeJobsRequest, DescribeJobsResponse>("/v1/describejobs", request, cancellation);
    }

    public Task<ListJobsResponse> ListJobsAsync(ListJobsRequest request, CancellationToken cancellation) =>
        Post<ListJobsRequest, ListJobsResponse>("/v1/listjobs", request, cancellation);

    public Task CancelJobAsync(CancelJobRequest request, CancellationToken cancellation) =>
        Post<CancelJobRequest, EmptyResponse>("/v1/canceljob", request, cancellation);

    public Task TerminateJobAsync(TerminateJobRequest request, CancellationToken cancellation) =>
        Post<TerminateJobRequest, EmptyResponse>("/v1/terminatejob", request, cancellation);

    private Task<TResponse> Post<TRequest, TResponse>(string path, TRequest request, CancellationToken cancellation) =>
        Client.SendRestJsonAsync<TRequest, TResponse>(HttpMethod.Post, path, request, cancellation);

    public void Dispose() => Client.Dispose();
}
