namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// Whether new BatchJobs are arriving faster than a moment apart, so the API server's time goes to their Jobs first:
/// while busy, the first status write of a run just dispatched and the Events wait (bounded), and the BatchJobs whose
/// write waited are reconciled again once arrivals pause. A burst of 500 BatchJobs then costs about one call each
/// (the Job) until every Job exists, and the bookkeeping follows.
/// <para>
/// And whether the Job controller is working through the controller's Jobs (<see cref="Counting"/>): it counts them
/// in turn at its own client's rate (Kubernetes' default of 20 calls a second counts about five Jobs a second, so a
/// burst of 500 takes a minute and a half), and a Job it has not reached yet is waited for rather than given a status
/// write of its own before its first count. The waiting BatchJobs are handed back once it stops counting.
/// </para>
/// </summary>
public sealed class DispatchPressure(TimeProvider time)
{
    /// <summary>Arrivals closer together than this keep the controller busy.</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);

    /// <summary>A count of one of the controller's Jobs closer than this to the last says the Job controller is counting.</summary>
    public static readonly TimeSpan CountingQuiet = TimeSpan.FromSeconds(5);

    private readonly Lock _gate = new();
    private readonly HashSet<string> _deferred = new(StringComparer.Ordinal);
    private DateTimeOffset _lastArrival = DateTimeOffset.MinValue;
    private DateTimeOffset _lastCount = DateTimeOffset.MinValue;

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

    /// <summary>True while the Job controller counted one of the controller's Jobs within <see cref="CountingQuiet"/>.</summary>
    public bool Counting
    {
        get
        {
            lock (_gate)
            {
                return time.GetUtcNow() - _lastCount < CountingQuiet;
            }
        }
    }

    /// <summary>The Job controller wrote the counts of one of the controller's Jobs.</summary>
    public void JobCounted()
    {
        lock (_gate)
        {
            _lastCount = time.GetUtcNow();
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

    /// <summary>The BatchJob's status write waits for the arrivals to pause and the Job controller to stop counting.</summary>
    public void Defer(string key)
    {
        lock (_gate)
        {
            _deferred.Add(key);
        }
    }

    /// <summary>The BatchJob wrote its status (its Job was counted): nothing to hand back.</summary>
    public void Forget(string key)
    {
        lock (_gate)
        {
            _deferred.Remove(key);
        }
    }

    /// <summary>
    /// Once arrivals paused and the Job controller stopped counting, the BatchJobs whose writes waited (each once);
    /// none before. What its Job controller has not counted by then is not coming soon, and their status says so.
    /// </summary>
    public IReadOnlyList<string> TakeDeferredIfQuiet()
    {
        lock (_gate)
        {
            var now = time.GetUtcNow();
            if (now - _lastArrival < Quiet || now - _lastCount < CountingQuiet || _deferred.Count == 0)
            {
                return [];
            }

            var keys = _deferred.ToList();
            _deferred.Clear();
            return keys;
        }
    }

    /// <summary>Hands the deferred BatchJobs back to <paramref name="reconcile"/> whenever both pause, until cancelled.</summary>
    public async Task RunAsync(Action<string> reconcile, CancellationToken cancellation)
    {
        using var timer = new PeriodicTimer(Quiet / 4, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellation).ConfigureAwait(false))
            {
                foreach (var key in TakeDeferredIfQuiet())
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
