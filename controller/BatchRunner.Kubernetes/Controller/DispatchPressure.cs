namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// Whether new BatchJobs are arriving faster than a moment apart, so the API server's time goes to their Jobs first:
/// while busy, the first status write of a run just dispatched and the Events wait (bounded), and the BatchJobs whose
/// write waited are reconciled again once arrivals pause. A burst of 500 BatchJobs then costs about one call each
/// (the Job) until every Job exists, and the bookkeeping follows. The Job events of a BatchJob whose write waits wake
/// nothing meanwhile: its reconcile once arrivals pause reads them all at once (the Job controller's count of a Job's
/// pods would otherwise cost a reconcile of its own for each of the 500 while they still arrive).
/// </summary>
public sealed class DispatchPressure(TimeProvider time)
{
    /// <summary>Arrivals closer together than this keep the controller busy.</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);

    /// <summary>No write waits longer than this, however long arrivals go on.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(30);

    private readonly Lock _gate = new();

    /// <summary>The BatchJobs whose write waits, with when it first did.</summary>
    private readonly Dictionary<string, DateTimeOffset> _deferred = new(StringComparer.Ordinal);
    private DateTimeOffset _lastArrival = DateTimeOffset.MinValue;

    /// <summary>True while BatchJobs not dispatched yet arrived within <see cref="Quiet"/>.</summary>
    public bool Busy
    {
        get
        {
            lock (_gate)
            {
                return time.GetUtcNow() - _lastArrival < Quiet;
            }
        }
    }

    /// <summary>A BatchJob not dispatched yet was seen (created, or changed before its first dispatch).</summary>
    public void Arrived()
    {
        lock (_gate)
        {
            _lastArrival = time.GetUtcNow();
        }
    }

    /// <summary>The BatchJob's status write waits for the arrivals to pause.</summary>
    public void Defer(string key)
    {
        lock (_gate)
        {
            _deferred.TryAdd(key, time.GetUtcNow());
        }
    }

    /// <summary>The BatchJob's reconcile wrote what it had: its next changes are worth a reconcile again.</summary>
    public void Settled(string key)
    {
        lock (_gate)
        {
            _deferred.Remove(key);
        }
    }

    /// <summary>Whether the BatchJob's write waits (so a change of its Jobs can wait with it).</summary>
    public bool IsDeferred(string key)
    {
        lock (_gate)
        {
            return _deferred.ContainsKey(key);
        }
    }

    /// <summary>
    /// The BatchJobs whose writes waited, each once: all of them once arrivals paused; while still busy, those that
    /// waited <see cref="MaxWait"/>.
    /// </summary>
    public IReadOnlyList<string> TakeDue()
    {
        lock (_gate)
        {
            if (_deferred.Count == 0)
            {
                return [];
            }

            var now = time.GetUtcNow();
            var quiet = now - _lastArrival >= Quiet;
            var due = _deferred.Where(d => quiet || now - d.Value >= MaxWait).Select(d => d.Key).ToList();
            foreach (var key in due)
            {
                _deferred.Remove(key);
            }

            return due;
        }
    }

    /// <summary>Hands the deferred BatchJobs back to <paramref name="reconcile"/> whenever arrivals pause, until cancelled.</summary>
    public async Task RunAsync(Action<string> reconcile, CancellationToken cancellation)
    {
        using var timer = new PeriodicTimer(Quiet / 4, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellation).ConfigureAwait(false))
            {
                foreach (var key in TakeDue())
                {
                    reconcile(key);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Leadership lost or shutting down.
        }
    }
}
