using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Sqs;
using BatchRunner.Controller.Hosting;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Local.Intake;
using k8s;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller.Intake;

/// <summary>Wires the SQS intake and the local submission runner into the controller's host.</summary>
public static class IntakeHostExtensions
{
    /// <summary>
    /// Options (<c>BatchRunner:Sqs</c>, <c>BatchRunner:Local</c>, validated on start), the SQS client, the sink
    /// (Kubernetes when <c>BatchRunner:Kubernetes:Enabled</c>, else the local store), the intake's metrics in the
    /// controller's registry, and the two hosted services; each does nothing while its part is off.
    /// </summary>
    public static IHostApplicationBuilder AddBatchRunnerSqsIntake(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<SqsIntakeOptions>().BindConfiguration(SqsIntakeOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LocalIntakeOptions>().BindConfiguration(LocalIntakeOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(provider => new IntakeMetrics(provider.GetService<ControllerMetrics>()?.Registry ?? Prometheus.Metrics.DefaultRegistry));
        services.AddSingleton<ISqsClient>(provider => SqsClientFactory.Create(provider.GetRequiredService<IOptions<SqsIntakeOptions>>().Value.Connection));
        services.AddSingleton(provider => SubmissionStore.Open(
            provider.GetRequiredService<IOptions<LocalIntakeOptions>>().Value.ResolveStoreRoot(), provider.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<ControllerBackends>();
        services.AddSingleton<IJobSink>(provider =>
        {
            var backends = provider.GetRequiredService<ControllerBackends>();
            return provider.GetRequiredService<IOptions<KubernetesOptions>>().Value.Enabled
                ? new KubernetesJobSink(provider.GetRequiredService<IKubernetes>(), backends.Refuse)
                : new LocalJobSink(provider.GetRequiredService<SubmissionStore>(), provider.GetRequiredService<IOptions<LocalIntakeOptions>>().Value.ResolveWorkingDirectory(), backends.Refuse);
        });
        services.AddHostedService<SqsIntakeService>();
        services.AddHostedService<LocalSubmissionRunner>();
        return builder;
    }
}
