using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Protocol;
using BatchRunner.Aws.S3;
using BatchRunner.Backends;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;
using BatchRunner.Store;
using Microsoft.Extensions.Logging;
using Serilog;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// The backends <c>batchrunner run</c> has: local processes, and AWS Batch when the environment names its job queue
/// and execution role (<c>BatchRunner__AwsBatch__*</c>, as the controller's settings; credentials and region from the
/// AWS SDK's chain). Kubernetes BatchJobs are the controller's: the CLI knows the name and says where they go. Each
/// backend is made only when a spec names it, so a local run opens no AWS client.
/// </summary>
public static class CliBackends
{
    public const string Host = "the batchrunner CLI";

    /// <param name="stopping">The command's token: local processes stop with the CLI.</param>
    /// <param name="extra">Backends a test or an embedding host adds (by name, beside these).</param>
    public static BackendRegistry Create(
        string store,
        Func<string, string?> environment,
        CancellationToken stopping,
        IEnumerable<IBatchBackend>? extra = null,
        IBatchApi? api = null,
        IRunSpecPublisher? publisher = null,
        AwsBatchTimings? timings = null)
    {
        var backends = new List<(Backend, Func<IBatchBackend>)>
        {
            (Backend.Local, () => new LocalBackend(
                new LocalExecutor(new LocalRunOptions { StoreRoot = store }, TimeProvider.System, CliApplication.Logs.CreateLogger<LocalExecutor>()), store, TimeProvider.System, stopping)),
        };
        var disabled = new List<DisabledBackend>
        {
            new(Backend.Kubernetes, "kubernetes BatchJobs are dispatched by the BatchRunner controller (kubectl apply -f, or batchrunner submit to its queue); set spec.backend: local (or leave it out) to run here"),
        };

        var (options, missing) = AwsBatchSettings(environment);
        if (options is not null)
        {
            backends.Add((Backend.AwsBatch, () => AwsBatch(options, store, environment, api, publisher, timings)));
        }
        else
        {
            disabled.Add(new DisabledBackend(Backend.AwsBatch, missing!));
        }

        backends.AddRange((extra ?? []).Select(b => (b.Backend, (Func<IBatchBackend>)(() => b))));
        return new BackendRegistry(Host, backends, disabled);
    }

    /// <summary>AWS Batch's settings from the environment, or what is missing or wrong in them.</summary>
    private static (AwsBatchOptions? Options, string? Missing) AwsBatchSettings(Func<string, string?> environment)
    {
        try
        {
            var options = AwsBatchOptions.FromEnvironment(environment);
            return options.Missing() is { Count: > 0 } missing
                ? (null, $"it needs {string.Join(" and ", missing.Select(m => m.Replace("BatchRunner:AwsBatch:", "BatchRunner__AwsBatch__", StringComparison.Ordinal)))} in the environment")
                : (options, null);
        }
        catch (FormatException e)
        {
            return (null, e.Message);
        }
    }

    /// <remarks>The Batch client and the token bucket live as long as the command (the process).</remarks>
    private static AwsBatchBackend AwsBatch(
        AwsBatchOptions options, string store, Func<string, string?> environment, IBatchApi? api, IRunSpecPublisher? publisher, AwsBatchTimings? timings)
    {
        var client = api ?? new BatchApiClient(new AwsJsonClient(BatchApiClient.ServiceOptions(options.Region, options.EndpointUrl), AwsJsonClient.CamelCaseJson(), log: CliApplication.Logs.CreateLogger<AwsJsonClient>()));
        var dispatcher = new AwsBatchDispatcher(
            client, options, publisher ?? new StoreRunSpecPublisher(ResultsOptions.FromEnvironment(environment), path => new LocalResultsStore(path)),
            new SubmitRateLimiter(options.SubmitJobsPerSecond), TimeProvider.System, CliApplication.Logs.CreateLogger<AwsBatchDispatcher>(), timings ?? options.Timings());
        Log.Information("AWS Batch for this run: {Settings} (state kept under {Store})", options.ToString(), store);
        return new AwsBatchBackend(dispatcher, TimeProvider.System);
    }
}
