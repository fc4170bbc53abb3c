using System.Collections.Concurrent;
using Amazon.SQS.Model;
using BatchRunner.Aws.Sqs;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Aws.Intake;

/// <summary>
/// Keeps held messages invisible while they are processed: every message whose visibility has half of the timeout
/// or less left is extended by the full timeout, ten to a ChangeMessageVisibilityBatch call. A slow sink therefore
/// never lets a message reappear (and be processed twice at once) while it is still being recorded. SQS allows a
/// message 12 hours of invisibility in all; after that it can no longer be extended.
/// </summary>
internal sealed class VisibilityKeeper(ISqsClient sqs, string queueUrl, TimeSpan visibility, IntakeMetrics metrics, TimeProvider time, ILogger log)
{
    private static readonly TimeSpan MaxHold = TimeSpan.FromHours(12);
    private readonly ConcurrentDictionary<string, Lease> _leases = new(StringComparer.Ordinal);

    public int Count => _leases.Count;

    public void Track(Lease lease) => _leases[lease.ReceiptHandle] = lease;

    public void Forget(Lease lease) => _leases.TryRemove(lease.ReceiptHandle, out _);

    /// <summary>Checks at a quarter of the timeout, so each message is extended when between a quarter and a half is left.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromTicks(Math.Max(visibility.Ticks / 4, TimeSpan.FromMilliseconds(250).Ticks)), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                await ExtendDueAsync(stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopping: nothing is held any more.
        }
    }

    public async Task ExtendDueAsync(CancellationToken cancellation)
    {
        var now = time.GetUtcNow();
        var due = _leases.Values
            .Where(l => !l.Lost && l.VisibleAt - now <= visibility / 2 && now + visibility - l.ReceivedAt < MaxHold)
            .ToList();
        foreach (var chunk in due.Chunk(10))
        {
            try
            {
                var response = await sqs.ChangeMessageVisibilityBatchAsync(new ChangeMessageVisibilityBatchRequest
                {
                    QueueUrl = queueUrl,
                    Entries = [.. chunk.Select((lease, i) => new ChangeMessageVisibilityBatchRequestEntry
                    {
                        Id = i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        ReceiptHandle = lease.ReceiptHandle,
                        VisibilityTimeout = (int)visibility.TotalSeconds,
                    })],
                }, cancellation).ConfigureAwait(false);

                foreach (var ok in response.Successful ?? [])
                {
                    chunk[int.Parse(ok.Id, System.Globalization.CultureInfo.InvariantCulture)].VisibleAt = now + visibility;
                    metrics.VisibilityExtensions.Inc();
                }

                foreach (var failed in response.Failed ?? [])
                {
                    var lease = chunk[int.Parse(failed.Id, System.Globalization.CultureInfo.InvariantCulture)];
                    metrics.SqsErrors.WithLabels("change_visibility").Inc();
                    if (failed.SenderFault == true)
                    {
                        // The receipt handle is no longer valid: the message may come again, and will be found already recorded.
                        lease.Lost = true;
                        log.LogWarning("Message {MessageId} could not be kept invisible ({Code}: {Error}); a redelivery will be recognised as a duplicate",
                            lease.MessageId, failed.Code, failed.Message);
                    }
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
            {
                // Retried at the next tick, while a quarter of the timeout is still left.
                metrics.SqsErrors.WithLabels("change_visibility").Inc(chunk.Length);
                log.LogWarning("Extending the visibility of {Count} messages failed: {Error}", chunk.Length, e.Message);
            }
        }
    }
}
