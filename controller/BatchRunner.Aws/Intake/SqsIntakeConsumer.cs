using System.Collections.Concurrent;
using Amazon.SQS.Model;
using BatchRunner.Aws.Sqs;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Aws.Intake;

/// <summary>
/// Turns the queue's messages into BatchJobs exactly once. Long-polls ReceiveMessage (up to 10 messages, 20 s),
/// never holding more messages than it can process at once; decides each message (<see cref="MessageProcessor"/>);
/// deletes it only after the sink recorded the job or the dead-letter queue took it, in batches; keeps it
/// invisible while it is processed; leaves it for redelivery, with backoff, when the sink fails transiently. On a
/// FIFO queue the messages of one group are processed one after another, in order; groups run side by side.
/// </summary>
public sealed class SqsIntakeConsumer : IDisposable
{
    private static readonly List<string> SystemAttributes =
        ["ApproximateReceiveCount", "MessageGroupId", "MessageDeduplicationId", "SentTimestamp", "SequenceNumber"];

    private readonly ISqsClient _sqs;
    private readonly SqsIntakeOptions _options;
    private readonly IntakeMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly MessageProcessor _processor;
    private readonly SemaphoreSlim _slots;
    private readonly SinkBackoff _backoff;
    private readonly ConcurrentDictionary<Task, bool> _handlers = new();
    private readonly int _batchSize;
    private int _processing;
    private DeleteBatcher? _deleter;
    private int _started;

    public SqsIntakeConsumer(ISqsClient sqs, IJobSink sink, SqsIntakeOptions options, IntakeMetrics metrics, TimeProvider time, ILogger<SqsIntakeConsumer> log)
    {
        _sqs = sqs;
        _options = options;
        _metrics = metrics;
        _time = time;
        _log = log;
        _processor = new MessageProcessor(sink, new TenantGuard(options.Tenants), options.MaxBodyBytes);
        _slots = new SemaphoreSlim(options.MaxConcurrency);
        _batchSize = Math.Min(10, options.MaxConcurrency);
        _backoff = new SinkBackoff(time);
    }

    private TimeSpan Visibility => TimeSpan.FromSeconds(_options.VisibilityTimeoutSeconds);

    /// <summary>Resolves the queues, then consumes until <paramref name="stopping"/>; then finishes or releases what it holds.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        var queues = await IntakeQueues.ResolveAsync(_sqs, _options, stopping).ConfigureAwait(false);
        await RunAsync(queues, stopping).ConfigureAwait(false);
    }

    public async Task RunAsync(IntakeQueues queues, CancellationToken stopping)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("a consumer runs once; create another to run again");
        }

        _log.LogInformation(
            "SQS intake from {Queue} ({QueueKind}), refusals to {DeadLetterQueue}; {Receivers} receiver(s), {Concurrency} messages at once",
            queues.Url, queues.IsFifo ? "FIFO" : "standard", queues.DeadLetter.Url, _options.Receivers, _options.MaxConcurrency);

        // Processing goes on after `stopping`, for the shutdown grace; `abort` ends it. Deleting ends last (`deleteStop`).
        using var abort = new CancellationTokenSource();
        using var keeperStop = new CancellationTokenSource();
        var keeper = new VisibilityKeeper(_sqs, queues.Url, Visibility, _metrics, _time, _log);
        using var deleter = _deleter = new DeleteBatcher(_sqs, queues.Url, TimeSpan.FromMilliseconds(_options.DeleteFlushMilliseconds), keeper, _metrics, _time, _log);
        var run = new Run(queues, keeper, deleter, new DeadLetterPublisher(_sqs, queues.DeadLetter), abort.Token);
        var keeping = keeper.RunAsync(keeperStop.Token);
        using var deleteStop = new CancellationTokenSource();
        var deleting = deleter.RunAsync(deleteStop.Token);

        var receivers = Enumerable.Range(0, _options.Receivers).Select(_ => Task.Run(() => ReceiveLoopAsync(run, stopping), CancellationToken.None)).ToArray();
        await Task.WhenAll(receivers).ConfigureAwait(false);

        // Shutdown: let what is being processed finish within the grace, then release the rest to other consumers.
        var handlers = Task.WhenAll(_handlers.Keys);
        if (await Task.WhenAny(handlers, Task.Delay(TimeSpan.FromSeconds(_options.ShutdownGraceSeconds), _time, CancellationToken.None)).ConfigureAwait(false) != handlers)
        {
            _log.LogWarning("{Count} messages still processing after the shutdown grace; releasing them", _processing);
            await abort.CancelAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(_handlers.Keys).ConfigureAwait(false);

        // The last deletes still go out, even after an abort; a few seconds, then what is left comes back as duplicates.
        deleter.Complete();
        deleter.Nudge();
        deleteStop.CancelAfter(TimeSpan.FromSeconds(10));
        await deleting.ConfigureAwait(false);
        await keeperStop.CancelAsync().ConfigureAwait(false);
        await keeping.ConfigureAwait(false);
        _log.LogInformation("SQS intake from {Queue} stopped", queues.Url);
    }

    private async Task ReceiveLoopAsync(Run run, CancellationToken stopping)
    {
        var failures = 0;
        while (!stopping.IsCancellationRequested)
        {
            var reserved = 0;
            try
            {
                // After transient sink failures, wait before taking more: they would only fail too, and each
                // receive counts towards the queue's maxReceiveCount.
                await _backoff.WaitAsync(stopping).ConfigureAwait(false);

                // Never hold more messages than can be processed: a message waiting here would use up its visibility.
                // Wait for room for a whole batch, though: taking one or two at a time as slots free up would
                // spend a round trip per message once processing is the bottleneck.
                while (reserved < _batchSize)
                {
                    await _slots.WaitAsync(stopping).ConfigureAwait(false);
                    reserved++;
                }

                var response = await _sqs.ReceiveMessageAsync(new ReceiveMessageRequest
                {
                    QueueUrl = run.Queues.Url,
                    MaxNumberOfMessages = reserved,
                    WaitTimeSeconds = _options.WaitTimeSeconds,
                    VisibilityTimeout = _options.VisibilityTimeoutSeconds,
                    MessageSystemAttributeNames = SystemAttributes,
                    MessageAttributeNames = ["All"],
                }, stopping).ConfigureAwait(false);
                failures = 0;

                var messages = response.Messages ?? [];
                var receivedAt = _time.GetUtcNow();
                var leases = messages.Select(m => new Lease(m, receivedAt, Visibility)).ToList();
                if (reserved > leases.Count)
                {
                    _slots.Release(reserved - leases.Count);
                }

                reserved = 0;
                if (leases.Count == 0)
                {
                    continue;
                }

                foreach (var lease in leases)
                {
                    run.Keeper.Track(lease);
                }

                _metrics.InFlight.Inc(leases.Count);
                Interlocked.Add(ref _processing, leases.Count);
                if (run.Queues.IsFifo)
                {
                    // One group's messages in the order received, one after another.
                    foreach (var group in leases.GroupBy(l => l.GroupId ?? ""))
                    {
                        Start(() => HandleGroupAsync(run, [.. group]));
                    }
                }
                else
                {
                    foreach (var lease in leases)
                    {
                        Start(() => HandleAsync(run, lease));
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                failures++;
                _metrics.SqsErrors.WithLabels("receive").Inc();
                var delay = TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, Math.Min(failures, 5) - 1)));
                _log.LogWarning("ReceiveMessage failed ({Error}); trying again in {Delay}s", e.Message, delay.TotalSeconds);
                try
                {
                    await Task.Delay(delay, _time, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            finally
            {
                if (reserved > 0)
                {
                    _slots.Release(reserved);
                }
            }
        }
    }

    private void Start(Func<Task> handler)
    {
        var task = Task.Run(handler);
        _handlers[task] = true;
        _ = task.ContinueWith(t => _handlers.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task HandleGroupAsync(Run run, List<Lease> group)
    {
        for (var i = 0; i < group.Count; i++)
        {
            if (await HandleAsync(run, group[i]).ConfigureAwait(false))
            {
                continue;
            }

            // A message of the group is coming back later: the ones after it must not overtake it. Released last
            // first, each goes back to the head of its group after the one before it.
            for (var j = group.Count - 1; j > i; j--)
            {
                await ReleaseAsync(run, group[j], "an earlier message of its group is being retried").ConfigureAwait(false);
                Done();
            }

            return;
        }
    }

    /// <summary>Decides one message and acts on it. False when it is coming back later (retried or released).</summary>
    private async Task<bool> HandleAsync(Run run, Lease lease)
    {
        using var scope = _log.BeginScope(new Dictionary<string, object> { ["MessageId"] = lease.MessageId });
        var started = _time.GetTimestamp();
        try
        {
            Decision decision;
            try
            {
                decision = await _processor.DecideAsync(lease, run.Abort).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (run.Abort.IsCancellationRequested)
            {
                await ReleaseAsync(run, lease, "shutting down").ConfigureAwait(false);
                return false;
            }
            catch (Exception e)
            {
                _metrics.SinkErrors.Inc();
                await RetryLaterAsync(run, lease, e).ConfigureAwait(false);
                return false;
            }
            finally
            {
                _metrics.ProcessingDuration.Observe(_time.GetElapsedTime(started).TotalSeconds);
            }

            switch (decision)
            {
                case Decision.Recorded { Duplicate: false } recorded:
                    _backoff.Succeeded();
                    _metrics.Messages.WithLabels("created").Inc();
                    _log.LogInformation("Recorded BatchJob {Namespace}/{BatchJob} from message {MessageId} (identity: {IdentitySource})",
                        recorded.Request.Job.Metadata.Namespace, recorded.Request.Job.Metadata.Name, lease.MessageId, recorded.Request.IdentitySource);
                    break;
                case Decision.Recorded recorded:
                    _backoff.Succeeded();
                    _metrics.Messages.WithLabels("duplicate").Inc();
                    _log.LogInformation("Message {MessageId} is BatchJob {Namespace}/{BatchJob}, already recorded (receive {ReceiveCount}); deleting it",
                        lease.MessageId, recorded.Request.Job.Metadata.Namespace, recorded.Request.Job.Metadata.Name, lease.ReceiveCount);
                    break;
                case Decision.Refused refused:
                    if (!await DeadLetterAsync(run, lease, refused).ConfigureAwait(false))
                    {
                        return false;
                    }

                    break;
            }

            run.Deleter.Enqueue(lease);
            return true;
        }
        finally
        {
            Done();
        }
    }

    private async Task<bool> DeadLetterAsync(Run run, Lease lease, Decision.Refused refused)
    {
        var rejection = refused.Rejection;
        try
        {
            var id = await run.DeadLetters.SendAsync(lease, rejection, run.Abort).ConfigureAwait(false);

            // The body is never logged: it may be large, hostile, or hold what its sender would not want in a log.
            _log.LogWarning("Refused message {MessageId} ({RejectCode}) {Target}: {Reason}; sent to the dead-letter queue as {DeadLetterMessageId}",
                lease.MessageId, rejection.CodeName, refused.Request?.Key ?? "", rejection.Reason.Length <= 1000 ? rejection.Reason : rejection.Reason[..1000] + "…", id);
            _metrics.Rejected.WithLabels(rejection.CodeName).Inc();
            _metrics.Messages.WithLabels("dead_lettered").Inc();
            return true;
        }
        catch (OperationCanceledException) when (run.Abort.IsCancellationRequested)
        {
            await ReleaseAsync(run, lease, "shutting down").ConfigureAwait(false);
            return false;
        }
        catch (Exception e)
        {
            _metrics.SqsErrors.WithLabels("send_dead_letter").Inc();
            await RetryLaterAsync(run, lease, e).ConfigureAwait(false);
            return false;
        }
    }

    /// <summary>
    /// A transient failure: the message stays on the queue and comes back after a delay that doubles with each
    /// receive (within the configured bounds, with jitter so retries spread); receiving pauses meanwhile.
    /// </summary>
    private async Task RetryLaterAsync(Run run, Lease lease, Exception error)
    {
        _backoff.Failed();
        var seconds = Math.Min(_options.RetryMaxDelaySeconds, _options.RetryBaseDelaySeconds * Math.Pow(2, Math.Min(lease.ReceiveCount - 1, 20)));
        var delay = (int)Math.Clamp(seconds * (0.8 + (Random.Shared.NextDouble() * 0.4)), 1, 43_200);
        _log.LogWarning("Could not record message {MessageId} (receive {ReceiveCount}): {Error}; it comes back in {Delay}s",
            lease.MessageId, lease.ReceiveCount, error.Message, delay);
        _metrics.Messages.WithLabels("retried").Inc();
        await ChangeVisibilityAsync(run, lease, delay).ConfigureAwait(false);
    }

    private async Task ReleaseAsync(Run run, Lease lease, string why)
    {
        _log.LogDebug("Releasing message {MessageId}: {Why}", lease.MessageId, why);
        _metrics.Messages.WithLabels("released").Inc();
        await ChangeVisibilityAsync(run, lease, 0).ConfigureAwait(false);
    }

    /// <summary>Gives the message back to the queue, visible after <paramref name="seconds"/>; the lease ends here.</summary>
    private async Task ChangeVisibilityAsync(Run run, Lease lease, int seconds)
    {
        run.Keeper.Forget(lease);
        _metrics.InFlight.Dec();
        try
        {
            // Not cancellable by shutdown: the point is to hand the message back before going.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), _time);
            await _sqs.ChangeMessageVisibilityAsync(new ChangeMessageVisibilityRequest
            {
                QueueUrl = run.Queues.Url,
                ReceiptHandle = lease.ReceiptHandle,
                VisibilityTimeout = seconds,
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // It comes back when its current visibility ends instead.
            _metrics.SqsErrors.WithLabels("change_visibility").Inc();
            _log.LogDebug("Changing the visibility of message {MessageId} failed: {Error}", lease.MessageId, e.Message);
        }
    }

    public void Dispose() => _slots.Dispose();

    private void Done()
    {
        _slots.Release();
        if (Interlocked.Decrement(ref _processing) == 0)
        {
            // Nothing else in progress: send the waiting deletes now rather than at the timer.
            _deleter?.Nudge();
        }
    }

    /// <summary>What one run of the consumer shares between its receivers and handlers.</summary>
    private sealed record Run(IntakeQueues Queues, VisibilityKeeper Keeper, DeleteBatcher Deleter, DeadLetterPublisher DeadLetters, CancellationToken Abort);
}
