namespace BatchRunner.Aws.Batch;

/// <summary>
/// The AWS Batch operations BatchRunner uses, typed. Implemented over BatchRunner's own JSON client
/// (<see cref="BatchApiClient"/>) because AWSSDK.Batch is not on the NuGet registry this project builds from;
/// where it is, an implementation over <c>IAmazonBatch</c> replaces that one class. Errors are
/// <see cref="Protocol.AwsServiceException"/>; throttling and transient errors are already retried.
/// </summary>
public interface IBatchApi
{
    Task<RegisterJobDefinitionResponse> RegisterJobDefinitionAsync(RegisterJobDefinitionRequest request, CancellationToken cancellation);

    Task<DescribeJobDefinitionsResponse> DescribeJobDefinitionsAsync(DescribeJobDefinitionsRequest request, CancellationToken cancellation);

    Task<SubmitJobResponse> SubmitJobAsync(SubmitJobRequest request, CancellationToken cancellation);

    /// <summary>At most 100 job ids per call (the API's limit).</summary>
    Task<DescribeJobsResponse> DescribeJobsAsync(DescribeJobsRequest request, CancellationToken cancellation);

    Task<ListJobsResponse> ListJobsAsync(ListJobsRequest request, CancellationToken cancellation);

    Task CancelJobAsync(CancelJobRequest request, CancellationToken cancellation);

    Task TerminateJobAsync(TerminateJobRequest request, CancellationToken cancellation);
}
