using BatchRunner.Controller.Dashboard;
using BatchRunner.Controller.Intake;
using BatchRunner.Dashboard;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Controller;
using k8s;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Prometheus;
using Serilog;
using Serilog.Formatting.Compact;

namespace BatchRunner.Controller.Hosting;

/// <summary>Wires the controller into a host: options, logging, the Kubernetes client, the operator service.</summary>
public static class ControllerHostExtensions
{
    public static WebApplicationBuilder AddBatchRunnerController(this WebApplicationBuilder builder)
    {
        var json = string.Equals(builder.Configuration["BatchRunner:Logging:Format"], "json", StringComparison.OrdinalIgnoreCase);
        builder.Services.AddSerilog((services, logger) =>
        {
            logger.ReadFrom.Configuration(builder.Configuration).Enrich.FromLogContext();
            if (json)
            {
                logger.WriteTo.Console(new RenderedCompactJsonFormatter());
            }
            else
            {
                logger.WriteTo.Console(outputTemplate: "{Timestamp:HH:mm:ss} {Level:u3} {Message:lj}{NewLine}{Exception}");
            }
        });

        builder.Services.AddOptions<KubernetesOptions>().BindConfiguration(KubernetesOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<LeaderElectionOptions>().BindConfiguration(LeaderElectionOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<BatchRunner.Aws.S3.ResultsOptions>().BindConfiguration(BatchRunner.Aws.S3.ResultsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<PricesOptions>().BindConfiguration(PricesOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<PricesOptions>, PricesOptions.Validator>();
        builder.Services.AddSingleton(services => services.GetRequiredService<IOptions<PricesOptions>>().Value.Load());
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(new ControllerMetrics(new CollectorRegistry()));
        builder.Services.AddSingleton<IKubernetes>(services => CreateClient(
            services.GetRequiredService<IOptions<KubernetesOptions>>().Value, services.GetRequiredService<ControllerMetrics>(), services.GetRequiredService<ILogger<KubernetesOptions>>()));
        builder.Services.AddSingleton<ControllerState>();
        builder.Services.AddControllerHealthChecks();
        builder.Services.AddHostedService<KubernetesOperatorService>();
        // Finished runs are compacted to Parquet in their store (the operator's leader does it, off the reconcile path).
        builder.Services.AddSingleton<BatchRunner.Kubernetes.Compaction.IRunCompactor>(services => new BatchRunner.Controller.Compaction.StoreRunCompactor(
            services.GetRequiredService<IOptions<BatchRunner.Aws.S3.ResultsOptions>>().Value, services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ILogger<BatchRunner.Local.Query.ResultsCompactor>>()));
        builder.Services.TryAddSingleton<ControllerBackends>();
        if (DashboardEnabled(builder.Configuration))
        {
            // Every replica serves the dashboard from informers of its own (a standby has no operator caches).
            builder.Services.AddBatchRunnerDashboard();
            // Its own client (own connections, own rate limit): the dashboard's lists and watches never queue the
            // operator's calls, a lease renewal above all, behind a connection of theirs that a network fault holds up.
            builder.Services.AddSingleton(services => new ClusterDashboardSource(
                CreateClient(services.GetRequiredService<IOptions<KubernetesOptions>>().Value, services.GetRequiredService<ControllerMetrics>()),
                services.GetRequiredService<IOptions<KubernetesOptions>>(), services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ILoggerFactory>()));
            builder.Services.AddSingleton<IDashboardSource>(services => services.GetRequiredService<ClusterDashboardSource>());
            builder.Services.AddHostedService(services => services.GetRequiredService<ClusterDashboardSource>());
            builder.Services.AddSingleton<IDashboardRuns, StoreDashboardRuns>();
        }

        builder.AddBatchRunnerAwsBatch();
        builder.AddBatchRunnerSqsIntake();
        return builder;
    }

    /// <summary>
    /// The client, from a kubeconfig file, the in-cluster service account, or the default kubeconfig, with client-side
    /// QPS (<see cref="KubernetesOptions.Qps"/>) and client-go's waits on 429; every call it sends (each try) is counted
    /// in <paramref name="metrics"/>.
    /// </summary>
    public static IKubernetes CreateClient(KubernetesOptions options, ControllerMetrics metrics, Microsoft.Extensions.Logging.ILogger? log = null)
    {
        var configuration = options.Kubeconfig is { Length: > 0 } path ? KubernetesClientConfiguration.BuildConfigFromConfigFile(path)
            : KubernetesClientConfiguration.IsInCluster() ? KubernetesClientConfiguration.InClusterConfig()
            : KubernetesClientConfiguration.BuildDefaultConfig();
        var limit = options.Qps is { } qps
            ? new RateLimitingHandler(qps, options.Burst)
            : RateLimitingHandler.Auto(KubernetesOptions.AutoQps, options.Burst, () => log?.LogInformation(
                "The API server shares its capacity with API Priority and Fairness: no client-side QPS limit (BatchRunner:Kubernetes:Qps sets one)"));
        return new k8s.Kubernetes(configuration, new RetryAfterHandler(), limit,
            new ApiRequestMetricsHandler((verb, resource) => metrics.ApiRequests.WithLabels(verb, resource).Inc()));
    }

    /// <summary>The read-only dashboard under /ui (BatchRunner:Dashboard:Enabled, on by default).</summary>
    private static bool DashboardEnabled(IConfiguration configuration) =>
        configuration.GetValue($"{DashboardOptions.Section}:{nameof(DashboardOptions.Enabled)}", true);

    public static WebApplication MapControllerEndpoints(this WebApplication app)
    {
        var metrics = app.Services.GetRequiredService<ControllerMetrics>();
        app.MapHealthChecks("/healthz", ControllerHealthChecks.Endpoint(ControllerHealthChecks.Live, StatusCodes.Status500InternalServerError));
        app.MapHealthChecks("/readyz", ControllerHealthChecks.Endpoint(ControllerHealthChecks.Ready, StatusCodes.Status503ServiceUnavailable));
        app.MapGet("/metrics", async (HttpContext context) =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.Registry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        });
        if (DashboardEnabled(app.Configuration))
        {
            app.MapBatchRunnerDashboard();
        }

        return app;
    }
}
