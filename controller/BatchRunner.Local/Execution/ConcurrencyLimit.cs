namespace BatchRunner.Local.Execution;

/// <summary>
/// How many attempts of a run may go at once, changeable while it runs (its queue's allowance): a lower limit
/// stops no attempt, it only holds back the next ones until the run is within it. The BCL's semaphores have a
/// fixed count (SemaphoreSlim cannot take permits back), hence this small gate.
/// </summary>
public sealed class ConcurrencyLimit(int limit)
{
    private readonly Lock _gate = new();
    private int _limit = Math.Max(0, limit);
    private int _inUse;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Limit
    {
        get { lock (_gate) { return _limit; } }
        set
        {
            lock (_gate)
            {
                if (_limit == Math.Max(0, value))
                {
                    return;
                }

                _limit = Math.Max(0, value);
                Signal();
            }
        }
    }

    /// <summary>Attempts going now.</summary>
    public int InUse
    {
        get { lock (_gate) { return _inUse; } }
    }

    /// <summary>Waits until one more attempt may go, and takes its place.</summary>
    public async Task EnterAsync(CancellationToken cancellation)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_inUse < _limit)
                {
                    _inUse++;
                    return;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>An attempt ended: its place is free.</summary>
    public void Exit()
    {
        lock (_gate)
        {
            _inUse--;
            Signal();
        }
    }

    private void Signal()
    {
        var waiting = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        waiting.TrySetResult();
    }
}
