using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Sqs;
using BatchRunner.Controller.Hosting;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller.Intake;

/// <summary>
/// Runs the SQS intake in the controller (when <c>BatchRunner:Sqs:Enabled</c>): requests from the queue become
/// BatchJobs through the <see cref="IJobSink"/> of this controller, a custom resource with Kubernetes, a local
/// submission without. Every replica may consume: the sinks are idempotent, so no leader is needed. A
/// configuration mistake (no queue, no dead-letter queue, no access) stops the controller; anything else is retried.
/// </summary>
public sealed class SqsIntakeService(
    IServiceProvider services,
    IOptions<SqsIntakeOptions> options,
    ControllerState state,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILoggerFactory logs) : BackgroundService
{
    private readonly ILogger<SqsIntakeService> _log = logs.CreateLogger<SqsIntakeService>();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            _log.LogInformation("The SQS intake is off (BatchRunner:Sqs:Enabled=false)");
            return;
        }

        var sqs = services.GetRequiredService<ISqsClient>();
        var sink = services.GetRequiredService<IJobSink>();
        _log.LogInformation("SQS intake: {Connection}; jobs go to {Sink}", settings.Connection.ToString(), sink.GetType().Name);
        try
        {
            var queues = await ResolveAsync(sqs, settings, stoppingToken).ConfigureAwait(false);
            using var consumer = new SqsIntakeConsumer(sqs, sink, settings, services.GetRequiredService<IntakeMetrics>(), time, logs.CreateLogger<SqsIntakeConsumer>());
            await consumer.RunAsync(queues, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down before the queues were resolved.
        }
        catch (Exception e)
        {
            var configuration = e is IntakeConfigurationException;
            _log.LogCritical(configuration ? null : e, "The SQS intake cannot run: {Message}", e.Message);
            state.Fault("SQS intake: " + e.Message);
            Environment.ExitCode = configuration ? 2 : 1;
            lifetime.StopApplication();
        }
    }

    /// <summary>Resolves the queues, retrying what may be passing (network, throttling) with backoff up to a minute.</summary>
    private async Task<IntakeQueues> ResolveAsync(ISqsClient sqs, SqsIntakeOptions settings, CancellationToken stoppingToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await IntakeQueues.ResolveAsync(sqs, settings, stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not (IntakeConfigurationException or OperationCanceledException))
            {
                var delay = TimeSpan.FromSeconds(Math.Min(60, Math.Pow(2, Math.Min(attempt, 6))));
                _log.LogWarning("Looking up the intake's queues failed ({Error}); trying again in {Delay}s", e.Message, delay.TotalSeconds);
                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
            }
        }
    }
}
