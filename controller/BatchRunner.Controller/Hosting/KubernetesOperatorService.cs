using BatchRunner.Backends;
using BatchRunner.Kubernetes.Compaction;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using k8s;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller.Hosting;

/// <summary>Runs the BatchJob operator while this replica leads (or always, with leader election off).</summary>
public sealed class KubernetesOperatorService(
    IKubernetes client,
    IOptions<KubernetesOptions> kubernetes,
    IOptions<LeaderElectionOptions> election,
    IOptions<BatchRunner.Aws.S3.ResultsOptions> results,
    ControllerMetrics metrics,
    ControllerState state,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ControllerBackends backends,
    IRunCompactor compactor,
    BatchRunner.Core.Costs.PriceTable prices,
    ILoggerFactory logs) : BackgroundService
{
    private readonly ILogger<KubernetesOperatorService> _log = logs.CreateLogger<KubernetesOperatorService>();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!kubernetes.Value.Enabled)
        {
            _log.LogInformation("The Kubernetes operator is off (BatchRunner:Kubernetes:Enabled=false)");
            return;
        }

        var store = results.Value;
        var collection = store.IsConfigured
            ? new ResultsCollection(store.Uri!, kubernetes.Value.ExecImage, store.Region, store.EndpointUrl, store.ForcePathStyle, store.CredentialsSecret)
            : null;
        var others = backends.Others;
        var settings = new OperatorSettings(
            kubernetes.Value.Workers, new DispatchSettings(kubernetes.Value.TtlSecondsAfterFinished, collection) { MaxCompletionsPerJob = kubernetes.Value.MaxCompletionsPerJob }, Backends: others,
            Compactor: store.CompactFinishedRuns ? compactor : null,
            Disabled: backends.Disabled,
            Prices: prices);
        foreach (var backend in others)
        {
            _log.LogInformation("The operator also dispatches backend {Backend}", backend.Backend.Name);
        }

        var @operator = new BatchJobOperator(client, settings, metrics, time, logs);
        // Off the start's path: a standby rehearses while it waits for the lease, a leader before its workers start.
        _ = @operator.RehearseAsync(stoppingToken);
        try
        {
            if (!election.Value.Enabled)
            {
                state.OperatorReady = () => @operator.HasSynced;
                // Without an election this replica acts as the only leader, and the gauge says so.
                metrics.Leader.Set(1);
                await @operator.RunAsync(stoppingToken).ConfigureAwait(false);
                return;
            }

            var options = election.Value;
            var leadership = new Leadership(client, new LeadershipSettings(
                options.Namespace, options.LeaseName, options.ResolveIdentity(),
                TimeSpan.FromSeconds(options.LeaseDurationSeconds), TimeSpan.FromSeconds(options.RenewDeadlineSeconds), TimeSpan.FromSeconds(options.RetryPeriodSeconds)), logs.CreateLogger<Leadership>(), time);
            state.OperatorReady = () => !leadership.IsLeader || @operator.HasSynced;
            state.Role = () => leadership.IsLeader ? "leader"
                : string.IsNullOrEmpty(leadership.ObservedLeader) ? "standby, waiting to lead (no leader)"
                : $"standby, waiting to lead (leader: {leadership.ObservedLeader})";
            await leadership.RunAsync(@operator.RunAsync, leading => metrics.Leader.Set(leading ? 1 : 0), stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
        catch (Exception e)
        {
            // Lost leadership, or the operator broke: exit so the pod restarts clean, as client-go controllers do.
            _log.LogError(e, "The operator stopped: {Message}", e.Message);
            state.Fault(e.Message);
            Environment.ExitCode = 1;
            lifetime.StopApplication();
        }
    }
}
