using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Protocol;
using BatchRunner.Aws.S3;
using BatchRunner.Backends;
using BatchRunner.Core.Spec;
using BatchRunner.Store;
using BatchRunner.Kubernetes.Controller;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller.Hosting;

/// <summary>
/// Wires the AWS Batch backend into the controller when <c>BatchRunner:AwsBatch:Enabled</c>: its options (validated
/// on start), the Batch client over AWSSDK.Core's credentials, the shared SubmitJob token bucket, the dispatcher,
/// and the <see cref="IBatchBackend"/> for <c>spec.backend: aws-batch</c>. The run's spec is published
/// through <see cref="IRunSpecPublisher"/> into the results store (<c>BatchRunner:Results</c>).
/// </summary>
public static class AwsBatchHostExtensions
{
    public static IHostApplicationBuilder AddBatchRunnerAwsBatch(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<AwsBatchOptions>()
            .BindConfiguration(AwsBatchOptions.Section)
            .PostConfigure<IConfiguration>((options, configuration) =>
            {
                // The default results store is the results section's, not a setting of this one.
                if (string.IsNullOrWhiteSpace(options.DefaultResultsUri) && configuration["BatchRunner:Results:Uri"] is { Length: > 0 } uri)
                {
                    options.DefaultResultsUri = uri;
                }
            })
            .ValidateDataAnnotations()
            .ValidateOnStart();
        if (!builder.Configuration.GetValue<bool>($"{AwsBatchOptions.Section}:Enabled"))
        {
            services.AddSingleton(new DisabledBackend(Backend.AwsBatch, $"set {AwsBatchOptions.Section}:Enabled=true with its JobQueue and ExecutionRoleArn"));
            return builder;
        }

        services.TryAddSingleton(TimeProvider.System);
        // Specs go where the wrapper in each container reads them: into the results store, S3 or a folder.
        services.AddSingleton<IRunSpecPublisher>(provider => new StoreRunSpecPublisher(
            provider.GetRequiredService<IOptions<ResultsOptions>>().Value, path => new LocalResultsStore(path)));
        services.AddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<AwsBatchOptions>>().Value;
            return new BatchApiClient(new AwsJsonClient(
                BatchApiClient.ServiceOptions(options.Region, options.EndpointUrl), AwsJsonClient.CamelCaseJson(),
                time: provider.GetRequiredService<TimeProvider>(), log: provider.GetRequiredService<ILogger<AwsJsonClient>>()));
        });
        services.AddSingleton<IBatchApi>(provider => provider.GetRequiredService<BatchApiClient>());
        services.AddSingleton(provider => new SubmitRateLimiter(provider.GetRequiredService<IOptions<AwsBatchOptions>>().Value.SubmitJobsPerSecond));
        services.AddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<AwsBatchOptions>>().Value;
            return new AwsBatchDispatcher(
                provider.GetRequiredService<IBatchApi>(), options, provider.GetRequiredService<IRunSpecPublisher>(),
                provider.GetRequiredService<SubmitRateLimiter>(), provider.GetRequiredService<TimeProvider>(), provider.GetRequiredService<ILogger<AwsBatchDispatcher>>(), options.Timings());
        });
        services.AddSingleton<IBatchBackend>(provider => new AwsBatchBackend(provider.GetRequiredService<AwsBatchDispatcher>(), provider.GetRequiredService<TimeProvider>()));
        return builder;
    }
}
