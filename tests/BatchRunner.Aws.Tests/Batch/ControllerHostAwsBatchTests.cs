using BatchRunner.Aws.Batch;
using BatchRunner.Backends;
using BatchRunner.Controller.Hosting;
using BatchRunner.Kubernetes.Controller;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>The controller host's AWS Batch wiring: settings validated on start, the backend registered only when on.</summary>
public sealed class ControllerHostAwsBatchTests
{
    private static WebApplication Build(Dictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(settings)
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["BatchRunner:Kubernetes:Enabled"] = "false",
            ["BatchRunner:LeaderElection:Enabled"] = "false",
        });
        builder.AddBatchRunnerController();
        return builder.Build();
    }

    [Fact]
    public async Task Enabled_without_a_queue_or_role_the_controller_does_not_start_and_says_what_is_missing()
    {
        await using var app = Build(new() { ["BatchRunner:AwsBatch:Enabled"] = "true" });

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());

        Assert.Contains("BatchRunner:AwsBatch:JobQueue", e.Message, StringComparison.Ordinal);
        Assert.Contains("BatchRunner:AwsBatch:ExecutionRoleArn", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Enabled_the_operator_gets_the_aws_batch_backend_with_the_results_store_as_default()
    {
        await using var app = Build(new()
        {
            ["BatchRunner:AwsBatch:Enabled"] = "true",
            ["BatchRunner:AwsBatch:JobQueue"] = "batchrunner",
            ["BatchRunner:AwsBatch:ExecutionRoleArn"] = BatchRig.ExecutionRole,
            ["BatchRunner:AwsBatch:Region"] = "eu-west-1",
            ["BatchRunner:Results:Uri"] = "s3://results/prefix",
        });

        var backend = Assert.Single(app.Services.GetServices<IBatchBackend>());
        Assert.IsType<AwsBatchBackend>(backend);
        Assert.Equal("s3://results/prefix", app.Services.GetRequiredService<IOptions<AwsBatchOptions>>().Value.DefaultResultsUri);
        Assert.Equal(new Uri("https://batch.eu-west-1.amazonaws.com"), app.Services.GetRequiredService<BatchApiClient>().Client.Endpoint.Url);
        // Specs go where the wrapper reads them: into the results store, S3 included (not only folders).
        Assert.IsType<BatchRunner.Aws.S3.StoreRunSpecPublisher>(app.Services.GetRequiredService<IRunSpecPublisher>());
    }

    [Fact]
    public async Task Off_by_default_nothing_of_aws_batch_is_registered()
    {
        await using var app = Build([]);

        Assert.Empty(app.Services.GetServices<IBatchBackend>());
    }

    [Theory]
    [InlineData(false, "aws-batch", "spec.backend: aws-batch is not enabled in this controller: set BatchRunner:AwsBatch:Enabled=true with its JobQueue and ExecutionRoleArn (backends here: local)")]
    [InlineData(true, "aws-batch", null)]
    [InlineData(true, "kubernetes", "spec.backend: kubernetes is not enabled in this controller: this controller runs without a cluster (BatchRunner:Kubernetes:Enabled=false) (backends here: local, aws-batch)")]
    [InlineData(true, "slurm", "spec.backend: slurm is not a backend of this controller (backends here: local, aws-batch)")]
    [InlineData(false, "local", null)]
    public async Task The_queue_door_takes_the_backends_this_controller_has_and_names_them_when_it_refuses(bool awsBatch, string backend, string? refusal)
    {
        await using var app = Build(awsBatch ? new()
        {
            ["BatchRunner:AwsBatch:Enabled"] = "true",
            ["BatchRunner:AwsBatch:JobQueue"] = "batchrunner",
            ["BatchRunner:AwsBatch:ExecutionRoleArn"] = BatchRig.ExecutionRole,
            ["BatchRunner:AwsBatch:Region"] = "eu-west-1",
            ["BatchRunner:Results:Uri"] = "s3://results/prefix",
        } : []);

        var sink = app.Services.GetRequiredService<BatchRunner.Aws.Intake.IJobSink>();

        Assert.Equal(refusal, sink.RefuseBackend(Core.Spec.Backend.Parse(backend))?.ToString());
    }
}
