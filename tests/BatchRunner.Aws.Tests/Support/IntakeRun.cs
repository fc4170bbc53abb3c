using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Sqs;
using Microsoft.Extensions.Logging.Abstractions;
using Prometheus;

namespace BatchRunner.Aws.Tests.Support;

/// <summary>A consumer running against fauxqs in the background, with its own metrics, until disposed.</summary>
public sealed class IntakeRun : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly SqsIntakeConsumer _consumer;
    private readonly Task _running;

    private IntakeRun(SqsIntakeOptions options, IJobSink sink, ISqsClient sqs)
    {
        Options = options;
        Metrics = new IntakeMetrics(new CollectorRegistry());
        _consumer = new SqsIntakeConsumer(sqs, sink, options, Metrics, TimeProvider.System, NullLogger<SqsIntakeConsumer>.Instance);
        _running = Task.Run(() => _consumer.RunAsync(_stop.Token));
    }

    public SqsIntakeOptions Options { get; }

    public IntakeMetrics Metrics { get; }

    /// <summary>The test tenants: namespaces default and team-a, /bin/sh locally, images under registry.test/.</summary>
    public static TenantGuardOptions Tenants { get; } = new()
    {
        AllowedNamespaces = ["default", "team-a"],
        AllowedCommands = [Specs.AllowedCommand],
        AllowedImages = ["registry.test/*"],
    };

    public static SqsIntakeOptions OptionsFor(
        string queue, string? deadLetter, int visibilitySeconds = 30, int retryBaseSeconds = 1, int concurrency = 16, int receivers = 1,
        int maxBodyBytes = IntakeRequestReader.DefaultMaxBodyBytes) => new()
    {
        Enabled = true,
        QueueUrl = queue,
        DeadLetterQueueUrl = deadLetter,
        EndpointUrl = Fauxqs.Shared.Url,
        Region = Fauxqs.Region,
        VisibilityTimeoutSeconds = visibilitySeconds,
        WaitTimeSeconds = 1,
        DeleteFlushMilliseconds = 50,
        RetryBaseDelaySeconds = retryBaseSeconds,
        RetryMaxDelaySeconds = Math.Max(retryBaseSeconds, 4),
        MaxConcurrency = concurrency,
        Receivers = receivers,
        MaxBodyBytes = maxBodyBytes,
        ShutdownGraceSeconds = 5,
        Tenants = Tenants,
    };

    public static IntakeRun Start(SqsIntakeOptions options, IJobSink sink, ISqsClient? sqs = null) =>
        new(options, sink, sqs ?? Fauxqs.Shared.Client());

    public double Count(string outcome) => Metrics.Messages.WithLabels(outcome).Value;

    public double Rejected(string reason) => Metrics.Rejected.WithLabels(reason).Value;

    /// <summary>Stops the consumer as the host would, and rethrows what it failed with.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _running.ConfigureAwait(false);
    }

    /// <summary>Waits until the queue holds nothing, visible or in flight.</summary>
    public async Task WaitUntilDrainedAsync(double seconds = 30)
    {
        await Eventually.WaitAsync(async () =>
        {
            if (_running.IsCompleted)
            {
                await _running.ConfigureAwait(false); // a crashed consumer fails the test with its exception
            }

            return await Fauxqs.Shared.CountAsync(Options.QueueUrl!).ConfigureAwait(false) == (0, 0);
        }, $"queue {Options.QueueUrl} drained", seconds).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }

        try
        {
            await _running.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Reported by StopAsync or WaitUntilDrainedAsync where a test cares.
        }

        _consumer.Dispose();
        _stop.Dispose();
    }
}
