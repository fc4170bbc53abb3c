namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// A de-duplicating work queue with client-go's semantics: an item queued many times is processed once; an item
/// added while it is being processed is processed again after <see cref="Done"/>, never by two workers at once;
/// failures back off exponentially per item (<see cref="AddRateLimited"/>) until <see cref="Forget"/>; an item
/// waiting to be added later waits once, for the earliest time asked (a reconcile's requeue-after does not pile up
/// timers, each of which would be a reconcile of its own).
/// </summary>
public sealed class WorkQueue<T> : IDisposable
    where T : notnull
{
    private readonly Lock _gate = new();
    private readonly Queue<T> _queue = new();
    private readonly HashSet<T> _dirty = [];
    private readonly HashSet<T> _processing = [];
    private readonly Dictionary<T, int> _failures = [];
    private readonly Dictionary<T, DateTimeOffset> _waiting = [];
    private readonly SemaphoreSlim _available = new(0);
    private readonly TimeProvider _time;
    private readonly TimeSpan _baseDelay;
    private readonly TimeSpan _maxDelay;
    private readonly CancellationTokenSource _shutdown = new();

    public WorkQueue(TimeProvider time, TimeSpan? baseDelay = null, TimeSpan? maxDelay = null)
    {
        _time = time;
        _baseDelay = baseDelay ?? TimeSpan.FromMilliseconds(5);
        _maxDelay = maxDelay ?? TimeSpan.FromMinutes(5);
    }

    /// <summary>Items waiting to be processed (not counting those in progress).</summary>
    public int Depth
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    public void Add(T item)
    {
        lock (_gate)
        {
            if (_shutdown.IsCancellationRequested || !_dirty.Add(item) || _processing.Contains(item))
            {
                return;
            }

            _queue.Enqueue(item);
        }

        _available.Release();
    }

    /// <summary>Items waiting to be added after a delay.</summary>
    public int Waiting
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>Adds the item after a delay (a requeue-after, or a backoff); if it already waits for an earlier time, that stands.</summary>
    public void AddAfter(T item, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(item);
            return;
        }

        var due = _time.GetUtcNow() + delay;
        lock (_gate)
        {
            if (_shutdown.IsCancellationRequested || _waiting.TryGetValue(item, out var earlier) && earlier <= due)
            {
                return;
            }

            _waiting[item] = due;
        }

        _ = DelayThenAddAsync(item, due, delay);
    }

    /// <summary>
    /// The next look the latest reconcile asked for (or none): it saw the latest state, so a look an earlier reconcile
    /// or a backoff asked for is dropped rather than made as a reconcile of its own.
    /// </summary>
    public void Reschedule(T item, TimeSpan? delay)
    {
        lock (_gate)
        {
            _waiting.Remove(item);
        }

        if (delay is { } after)
        {
            AddAfter(item, after);
        }
    }

    /// <summary>Adds the item after its next backoff: 5 ms, 10 ms, 20 ms … up to the maximum.</summary>
    public TimeSpan AddRateLimited(T item)
    {
        int failures;
        lock (_gate)
        {
            failures = _failures.GetValueOrDefault(item);
            _failures[item] = failures + 1;
        }

        var delay = TimeSpan.FromTicks((long)Math.Min(_baseDelay.Ticks * Math.Pow(2, failures), _maxDelay.Ticks));
        AddAfter(item, delay);
        return delay;
    }

    /// <summary>Resets the item's backoff after it was processed successfully.</summary>
    public void Forget(T item)
    {
        lock (_gate)
        {
            _failures.Remove(item);
        }
    }

    public int Failures(T item)
    {
        lock (_gate)
        {
            return _failures.GetValueOrDefault(item);
        }
    }

    /// <summary>Waits for the next item and marks it in progress; call <see cref="Done"/> when finished with it.</summary>
    public async Task<T> GetAsync(CancellationToken cancellation)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellation, _shutdown.Token);
        while (true)
        {
            await _available.WaitAsync(linked.Token).ConfigureAwait(false);
            lock (_gate)
            {
                if (_queue.TryDequeue(out var item))
                {
                    _processing.Add(item);
                    _dirty.Remove(item);
                    return item;
                }
            }
        }
    }

    public void Done(T item)
    {
        var requeue = false;
        lock (_gate)
        {
            _processing.Remove(item);
            if (_dirty.Contains(item))
            {
                _queue.Enqueue(item);
                requeue = true;
            }
        }

        if (requeue)
        {
            _available.Release();
        }
    }

    public void ShutDown() => _shutdown.Cancel();

    public void Dispose()
    {
        _shutdown.Cancel();
        _shutdown.Dispose();
        _available.Dispose();
    }

    private async Task DelayThenAddAsync(T item, DateTimeOffset due, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _time, _shutdown.Token).ConfigureAwait(false);
            lock (_gate)
            {
                // An earlier time asked since took this one's place (and was added then).
                if (!_waiting.TryGetValue(item, out var current) || current != due)
                {
                    return;
                }

                _waiting.Remove(item);
            }

            Add(item);
        }
        catch (OperationCanceledException)
        {
            // Shut down while waiting: the item is dropped with the queue.
        }
        catch (ObjectDisposedException)
        {
            // Disposed while waiting.
        }
    }
}
