namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// Whether new BatchJobs are arriving faster than a moment apart, so the API server's time goes to their Jobs first:
/// while busy, the first status write of a run just dispatched and the Events wait (bounded), and the BatchJobs whose
/// write waited are reconciled again once arrivals pause. A burst of 500 BatchJobs then costs about one call each
/// (the Job) until every Job exists, and the bookkeeping follows.
/// </summary>
public sealed class DispatchPressure(TimeProvider time)
{
    /// <summary>Arrivals closer together than this keep the controller busy.</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly HashSet<string> _deferred = new(StringComparer.Ordinal);
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
            _deferred.Add(key);
        }
    }

    /// <summary>Once arrivals paused, the BatchJobs whose writes waited (each once); none while still busy.</summary>
    public IReadOnlyList<string> TakeDeferredIfQuiet()
    {
        lock (_gate)
        {
            if (time.GetUtcNow() - _lastArrival < Quiet || _deferred.Count == 0)
            {
                return [];
            }

            var keys = _deferred.ToList();
            _deferred.Clear();
            return keys;
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
