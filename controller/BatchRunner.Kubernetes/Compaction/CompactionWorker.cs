using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using BatchRunner.Kubernetes.Controller;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Compaction;

/// <summary>Settings of the compaction of finished runs.</summary>
/// <param name="Workers">Runs compacted at once (each is a DuckDB process's worth of CPU and memory).</param>
/// <param name="FirstRetry">The wait after the first failure; it doubles with each failure up to <paramref name="MaxRetry"/>.</param>
/// <param name="FailedRunGrace">
/// How long after a failed run's completion compaction waits: a Job fails while its last pods may still be
/// stopping and uploading their ledger rows (a succeeded run's pods have all uploaded before it completes).
/// </param>
public sealed record CompactionSettings(int Workers, TimeSpan FirstRetry, TimeSpan MaxRetry, TimeSpan FailedRunGrace)
{
    public static readonly CompactionSettings Default = new(1, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(30));
}

public enum CompactionPhase
{
    /// <summary>Queued, waiting for its time, or being compacted.</summary>
    Pending,

    /// <summary>The last try failed; another follows after a backoff.</summary>
    Retrying,

    /// <summary>Compacted (now or earlier).</summary>
    Compacted,

    /// <summary>Nothing to compact; not retried.</summary>
    NothingToCompact,
}

/// <summary>Where one run's compaction stands; <see cref="Message"/> is written into the BatchJob's condition.</summary>
public sealed record CompactionProgress(CompactionPhase Phase, string Message, int Failures);

/// <summary>
/// Compacts finished runs off the reconcile path. The reconciler asks (<see cref="Request"/>, level-based: asking
/// again for the same run changes nothing) and writes the answer into a condition; when a run's compaction settles
/// (done, or a try failed) the worker says so through the callback of <see cref="RunAsync"/>, which requeues the
/// BatchJob so that the reconciler writes the new state. Failures are retried with exponential backoff for as long
/// as the run is asked for. What is compacted is recorded in the store (the run manifest), so a new leader, whose
/// worker starts empty, finds a compacted run at once and compacts nothing twice.
/// </summary>
public sealed class CompactionWorker(IRunCompactor compactor, CompactionSettings settings, TimeProvider time, ILogger<CompactionWorker> log, ControllerMetrics? metrics = null)
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Channel<(string Key, Entry Entry)> _due = Channel.CreateUnbounded<(string, Entry)>();

    /// <summary>
    /// Asks for the compaction of a BatchJob's run and answers where it stands. A failed run's compaction starts
    /// <see cref="CompactionSettings.FailedRunGrace"/> after <paramref name="failedAt"/>.
    /// </summary>
    public CompactionProgress Request(string key, CompactionTarget target, DateTimeOffset? failedAt = null)
    {
        Entry entry;
        while (true)
        {
            if (_entries.TryGetValue(key, out var existing) && existing.Target == target)
            {
                return existing.Progress;
            }

            // New, or another run or store for this BatchJob (it was re-created): the new one replaces the old.
            entry = new Entry(target, Pending(target));
            if (existing is null ? _entries.TryAdd(key, entry) : _entries.TryUpdate(key, entry, existing))
            {
                existing?.Dispose();
                break;
            }
        }

        var now = time.GetUtcNow();
        var wait = failedAt is { } at ? at + settings.FailedRunGrace - now : TimeSpan.Zero;
        if (wait > TimeSpan.Zero)
        {
            entry.Progress = entry.Progress with
            {
                Message = $"run {target.RunId}: its results are compacted into {target.Store} from {(now + wait).UtcDateTime.ToString("HH:mm:ss'Z'", CultureInfo.InvariantCulture)}, once its last pods have uploaded",
            };
        }

        // Read before it is due: a fast worker would otherwise answer for a compaction the caller has not seen asked.
        var asked = entry.Progress;
        Schedule(key, entry, wait);
        return asked;
    }

    /// <summary>Drops what is known of a BatchJob's compaction (it is done and recorded, or the BatchJob is gone); a pending retry does not happen.</summary>
    public void Forget(string key)
    {
        if (_entries.TryRemove(key, out var entry))
        {
            entry.Dispose();
        }
    }

    /// <summary>Compacts what is due until cancelled; <paramref name="settled"/> gets the key of each BatchJob whose compaction changed state.</summary>
    public Task RunAsync(Action<string> settled, CancellationToken cancellation) =>
        Task.WhenAll(Enumerable.Range(0, Math.Max(1, settings.Workers)).Select(_ => Task.Run(() => WorkAsync(settled, cancellation), CancellationToken.None)));

    private async Task WorkAsync(Action<string> settled, CancellationToken cancellation)
    {
        try
        {
            await foreach (var (key, entry) in _due.Reader.ReadAllAsync(cancellation).ConfigureAwait(false))
            {
                if (!_entries.TryGetValue(key, out var current) || !ReferenceEquals(current, entry))
                {
                    continue;
                }

                await CompactAsync(key, entry, cancellation).ConfigureAwait(false);
                settled(key);
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Stopping (leadership lost, or shutdown): what was not compacted is asked for again by the next leader.
        }
    }

    private async Task CompactAsync(string key, Entry entry, CancellationToken cancellation)
    {
        var target = entry.Target;
        var started = time.GetTimestamp();
        try
        {
            var outcome = await compactor.CompactAsync(target, cancellation).ConfigureAwait(false);
            metrics?.Compactions.WithLabels(outcome.Result == CompactionResult.NothingToCompact ? "nothing_to_compact" : "compacted").Inc();
            metrics?.CompactionDuration.Observe(time.GetElapsedTime(started).TotalSeconds);
            entry.Progress = outcome.Result == CompactionResult.NothingToCompact
                ? new CompactionProgress(CompactionPhase.NothingToCompact, $"run {target.RunId}: nothing to compact: {outcome.Message}", entry.Progress.Failures)
                : new CompactionProgress(CompactionPhase.Compacted, $"run {target.RunId}: {outcome.Message}", entry.Progress.Failures);
            log.LogInformation("Compaction of {BatchJob} run {RunId} in {Store}: {Result}: {Message}", key, target.RunId, target.Store, outcome.Result.ToString(), outcome.Message);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // Never fatal to the controller: the failure goes into the condition and the run is tried again later.
            metrics?.Compactions.WithLabels("failed").Inc();
            metrics?.CompactionDuration.Observe(time.GetElapsedTime(started).TotalSeconds);
            var failures = entry.Progress.Failures + 1;
            var delay = Backoff(failures);
            entry.Progress = new CompactionProgress(
                CompactionPhase.Retrying,
                $"run {target.RunId}: compacting its results in {target.Store} failed ({failures} time(s)); retrying in {delay.TotalSeconds:0}s: {e.Message}",
                failures);
            log.LogWarning(e, "Compaction of {BatchJob} run {RunId} failed ({Failures} in a row); retrying in {Delay}", key, target.RunId, failures, delay);
            Schedule(key, entry, delay);
        }
    }

    private TimeSpan Backoff(int failures)
    {
        var factor = Math.Pow(2, Math.Min(failures - 1, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(settings.FirstRetry.Ticks * factor, settings.MaxRetry.Ticks));
        return delay < settings.FirstRetry ? settings.FirstRetry : delay;
    }

    private void Schedule(string key, Entry entry, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            _due.Writer.TryWrite((key, entry));
            return;
        }

        entry.SetTimer(time.CreateTimer(_ => _due.Writer.TryWrite((key, entry)), null, delay, Timeout.InfiniteTimeSpan));
    }

    private static CompactionProgress Pending(CompactionTarget target) =>
        new(CompactionPhase.Pending, $"run {target.RunId}: compacting its results in {target.Store}", 0);

    private sealed class Entry(CompactionTarget target, CompactionProgress progress) : IDisposable
    {
        private CompactionProgress _progress = progress;
        private ITimer? _timer;

        public CompactionTarget Target { get; } = target;

        public CompactionProgress Progress
        {
            get => Volatile.Read(ref _progress);
            set => Volatile.Write(ref _progress, value);
        }

        public void SetTimer(ITimer timer) => Interlocked.Exchange(ref _timer, timer)?.Dispose();

        public void Dispose() => Interlocked.Exchange(ref _timer, null)?.Dispose();
    }
}
