using BatchRunner.Aws.S3;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Store;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Results.Tests;

/// <summary>What the AWS Batch dispatcher publishes before it submits is what the wrapper in each container reads.</summary>
public sealed class RunSpecPublisherTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private static BatchJob Job() => BatchJobParser.Parse("""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: sweep}
        spec:
          image: reg/sim:1
          command: [sim]
          backend: aws-batch
          sweep: {grid: {rate: [0.5, 1.0], servers: [1, 2]}, repeats: 2}
        """).Job!;

    [Fact]
    public async Task A_spec_published_to_S3_is_at_the_layouts_key_and_reads_back_as_the_same_run()
    {
        var (store, uri) = await S3Server.Shared.NewStoreAsync("results/team-a");
        var job = Job();
        var runId = RunIdentity.For(job);
        var publisher = new StoreRunSpecPublisher(S3Server.Shared.Options(uri), path => new LocalResultsStore(path));

        var location = await publisher.PublishAsync(uri, job.Metadata.Name, runId, RunIdentity.SpecJson(job), CancellationToken.None);

        Assert.Equal($"{uri}/{StoreLayout.SpecKey(job.Metadata.Name, runId)}", location);
        var stored = await store.GetBytesAsync(StoreLayout.SpecKey(job.Metadata.Name, runId), CancellationToken.None);
        Assert.NotNull(stored);
        Assert.Equal(runId, RunIdentity.For(StoredSpec.Parse(System.Text.Encoding.UTF8.GetString(stored))));
    }

    [Fact]
    public async Task A_spec_published_to_a_folder_is_a_file_the_wrapper_can_open_and_publishing_again_is_harmless()
    {
        var root = _temp.Sub("store");
        var job = Job();
        var runId = RunIdentity.For(job);
        var publisher = new StoreRunSpecPublisher(new ResultsOptions(), path => new LocalResultsStore(path));

        var first = await publisher.PublishAsync(root, job.Metadata.Name, runId, RunIdentity.SpecJson(job), CancellationToken.None);
        var second = await publisher.PublishAsync(root, job.Metadata.Name, runId, RunIdentity.SpecJson(job), CancellationToken.None);

        Assert.Equal(first, second);
        Assert.Equal(Path.Combine(root, StoreLayout.SpecKey(job.Metadata.Name, runId)), first);
        Assert.Equal(runId, RunIdentity.For(StoredSpec.Parse(await File.ReadAllTextAsync(first))));
    }

    [Fact]
    public async Task A_store_that_is_not_a_folder_or_S3_is_refused_naming_it()
    {
        var publisher = new StoreRunSpecPublisher(new ResultsOptions(), path => new LocalResultsStore(path));

        var error = await Assert.ThrowsAsync<BatchRunner.Aws.Protocol.AwsConfigurationException>(
            () => publisher.PublishAsync("gs://bucket/results", "sweep", "r1", "{}", CancellationToken.None));

        Assert.Contains("gs://bucket/results", error.Message, StringComparison.Ordinal);
    }
}
