using System.Globalization;
using System.Threading.Channels;
using Amazon.SQS.Model;
using BatchRunner.Aws.Sqs;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Aws.Intake;

/// <summary>
/// Deletes handled messages ten to a DeleteMessageBatch call. A batch is sent when ten are waiting, when the
/// oldest has waited the flush interval, or at once when the intake has nothing else in progress (so a lone
/// message, or the next message of a FIFO group, does not wait for the timer). A delete that fails leaves the
/// message to come back, where the sink recognises it as already recorded: never a second job.
/// </summary>
internal sealed class DeleteBatcher(
    ISqsClient sqs, string queueUrl, TimeSpan flushInterval, VisibilityKeeper keeper, IntakeMetrics metrics, TimeProvider time, ILogger log) : IDisposable
{
    private const int MaxConcurrentCalls = 4;
    private const int Attempts = 3;

    private readonly Channel<Lease> _pending = Channel.CreateUnbounded<Lease>(new UnboundedChannelOptions { SingleReader = false });
    private readonly SemaphoreSlim _calls = new(MaxConcurrentCalls);
    private TaskCompletionSource _nudge = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Enqueue(Lease lease)
    {
        if (!_pending.Writer.TryWrite(lease))
        {
            // Only after Complete (shutdown): the message comes back and is recognised as already recorded.
            Forget(lease);
        }
    }

    /// <summary>Send what is waiting now rather than at the timer.</summary>
    public void Nudge() => Volatile.Read(ref _nudge).TrySetResult();

    /// <summary>No more deletes will come: send what is waiting and let <see cref="RunAsync"/> finish.</summary>
    public void Complete() => _pending.Writer.TryComplete();

    /// <param name="abort">Cancelled only when even the last deletes must be given up.</param>
    public async Task RunAsync(CancellationToken abort)
    {
        var reader = _pending.Reader;
        var calls = new List<Task>();
        Task<bool>? waiting = null;
        try
        {
            // One WaitToReadAsync outstanding at a time, kept across the loops until it completes.
            while (await (waiting ??= reader.WaitToReadAsync(abort).AsTask()).ConfigureAwait(false))
            {
                waiting = null;
                var batch = new List<Lease>(10);
                var deadline = time.GetUtcNow() + flushInterval;
                while (batch.Count < 10)
                {
                    if (reader.TryRead(out var lease))
                    {
                        batch.Add(lease);
                        continue;
                    }

                    var left = deadline - time.GetUtcNow();
                    var nudge = Volatile.Read(ref _nudge);
                    if (left <= TimeSpan.Zero || nudge.Task.IsCompleted || reader.Completion.IsCompleted)
                    {
                        break;
                    }

                    waiting ??= reader.WaitToReadAsync(abort).AsTask();
                    var delay = Task.Delay(left, time, abort);
                    var woke = await Task.WhenAny(waiting, nudge.Task, delay).ConfigureAwait(false);
                    if (woke == waiting)
                    {
                        if (!await waiting.ConfigureAwait(false))
                        {
                            break; // completed: send what there is
                        }

                        waiting = null;
                    }
                    else if (woke == delay)
                    {
                        break;
                    }
                }

                if (Volatile.Read(ref _nudge).Task.IsCompleted)
                {
                    Interlocked.Exchange(ref _nudge, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                }

                // A wait that finished for a message this batch already took says nothing of the next one: ask again.
                // (Kept, a nudge that won the race left it standing, and the next batch went out empty, a call
                // SQS refuses: found under the fault tier's resets.)
                if (waiting is { IsCompleted: true })
                {
                    waiting = null;
                }

                if (batch.Count == 0)
                {
                    continue;
                }

                await _calls.WaitAsync(abort).ConfigureAwait(false);
                calls.RemoveAll(t => t.IsCompleted);
                calls.Add(SendAsync(batch, abort));
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            // Given up: what was not deleted comes back and is recognised as already recorded.
        }

        await Task.WhenAll(calls).ConfigureAwait(false);
    }

    private async Task SendAsync(List<Lease> batch, CancellationToken abort)
    {
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    var response = await sqs.DeleteMessageBatchAsync(new DeleteMessageBatchRequest
                    {
                        QueueUrl = queueUrl,
                        Entries = [.. batch.Select((lease, i) => new DeleteMessageBatchRequestEntry
                        {
                            Id = i.ToString(CultureInfo.InvariantCulture),
                            ReceiptHandle = lease.ReceiptHandle,
                        })],
                    }, abort).ConfigureAwait(false);

                    foreach (var ok in response.Successful ?? [])
                    {
                        var lease = batch[int.Parse(ok.Id, CultureInfo.InvariantCulture)];
                        Forget(lease);
                    }

                    foreach (var failed in response.Failed ?? [])
                    {
                        var lease = batch[int.Parse(failed.Id, CultureInfo.InvariantCulture)];
                        metrics.SqsErrors.WithLabels("delete").Inc();
                        log.LogWarning("Deleting message {MessageId} failed ({Code}: {Error}); when it comes back it is found already recorded",
                            lease.MessageId, failed.Code, failed.Message);
                        Forget(lease);
                    }

                    return;
                }
                catch (Exception e) when (attempt < Attempts && !abort.IsCancellationRequested)
                {
                    metrics.SqsErrors.WithLabels("delete").Inc();
                    log.LogDebug("DeleteMessageBatch failed ({Error}); attempt {Attempt} of {Attempts}", e.Message, attempt, Attempts);
                    await Task.Delay(TimeSpan.FromMilliseconds(200 << attempt), time, abort).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e)
        {
            metrics.SqsErrors.WithLabels("delete").Inc();
            log.LogWarning("Deleting {Count} messages failed ({Error}); when they come back they are found already recorded", batch.Count, e.Message);
            batch.ForEach(Forget);
        }
        finally
        {
            _calls.Release();
        }
    }

    public void Dispose() => _calls.Dispose();

    private void Forget(Lease lease)
    {
        keeper.Forget(lease);
        metrics.InFlight.Dec();
    }
}
