namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// A de-duplicating work queue with client-go's semantics: an item queued many times is processed once; an item
/// added while it is being processed is processed again after <see cref="Done"/>, never by two workers at once;
/// failures back off exponentially per item (<see cref="AddRateLimited"/>) until <see cref="Forget"/>; an item
/// waiting to be added later waits once, for the earliest time asked (a reconcile's requeue-after does not pile up
/// timers, each of which would be a reconcile of its own). Items waiting share one timer, set for the earliest of
/// them, as client-go's delaying queue keeps a heap: a look withdrawn or moved (<see cref="Reschedule"/>, one per
/// reconcile) costs nothing when its time comes, where a timer of its own would still fire and wake a thread.
/// </summary>
public sealed class WorkQueue<T> : IDisposable
    where T : notnull
{
    private readonly Lock _gate = new();
    private readonly Queue<T> _queue = new();
    private readonly HashSet<T> _dirty = [];
    private readonly HashSet<T> _processing = [];
    private readonly Dictionary<T, int> _failures = [];
    private readonly Dictionary<T, long> _waiting = [];

    // Every time asked (the time provider's monotonic timestamps: a wall clock set back delays nothing), earliest
    // first; an entry whose item no longer waits for that time is stale and dropped.
    private readonly PriorityQueue<T, long> _due = new();
    private readonly ITimer _timer;
    private long? _armedFor;
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
        _timer = time.CreateTimer(_ => AddDue(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
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

        var due = _time.GetTimestamp() + (long)(delay.TotalSeconds * _time.TimestampFrequency);
        lock (_gate)
        {
            if (_shutdown.IsCancellationRequested || _waiting.TryGetValue(item, out var earlier) && earlier <= due)
            {
                return;
            }

            _waiting[item] = due;
            _due.Enqueue(item, due);
            ArmLocked();
        }
    }

    /// <summary>
    /// The next look the latest reconcile asked for (or none): it saw the latest state, so a look an earlier reconcile
    /// or a backoff asked for is dropped rather than made as a reconcile of its own.
    /// </summary>
    public void Reschedule(T item, TimeSpan? delay)
    {
        lock (_gate)
        {
            if (_waiting.Remove(item))
            {
                ArmLocked();
            }
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
        _timer.Dispose();
        _shutdown.Dispose();
        _available.Dispose();
    }

    /// <summary>Sets the timer for the earliest item still waiting, dropping stale entries ahead of it (under the gate).</summary>
    private void ArmLocked()
    {
        // A reconcile that ends after the queue shut down reschedules too: its timer may be gone.
        if (_shutdown.IsCancellationRequested)
        {
            return;
        }

        while (_due.TryPeek(out var item, out var due) && (!_waiting.TryGetValue(item, out var current) || current != due))
        {
            _due.Dequeue();
        }

        if (!_due.TryPeek(out _, out var next))
        {
            if (_armedFor is not null)
            {
                _armedFor = null;
                _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }

            return;
        }

        if (_armedFor != next)
        {
            _armedFor = next;
            var wait = _time.GetElapsedTime(_time.GetTimestamp(), next);
            _timer.Change(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The timer fired: every item whose time came is added, and the timer set for the next.</summary>
    private void AddDue()
    {
        List<T>? ready = null;
        lock (_gate)
        {
            if (_shutdown.IsCancellationRequested)
            {
                return;
            }

            _armedFor = null;
            var now = _time.GetTimestamp();
            while (_due.TryPeek(out var item, out var due) && due <= now)
            {
                _due.Dequeue();
                if (_waiting.TryGetValue(item, out var current) && current == due)
                {
                    _waiting.Remove(item);
                    (ready ??= []).Add(item);
                }
            }

            ArmLocked();
        }

        foreach (var item in ready ?? [])
        {
            Add(item);
        }
    }
}
