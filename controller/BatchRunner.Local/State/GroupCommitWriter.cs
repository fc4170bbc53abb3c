namespace BatchRunner.Local.State;

/// <summary>
/// Writes a run's state transitions in group commits: callers queue them and go on; one thread commits whatever
/// has queued, at most once per <c>interval</c>, in a single SQLite transaction. A commit cost more than the rest
/// of an index's bookkeeping, and thousands of tiny indexes made thousands of them.
/// What a <c>kill -9</c> can lose is the last interval's transitions, and nothing that matters: every finished
/// attempt's ledger row is on disk before its transition is queued, and a resumed run adopts succeeded attempts
/// from the disk and finds unrecorded processes by their environment (see LocalExecutor).
/// </summary>
public sealed class GroupCommitWriter : IDisposable
{
    private readonly RunStateStore _store;
    private readonly TimeSpan _interval;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private List<StateTransition> _pending = [];
    private long _queued;
    private long _committed;
    private int _flushWaiters;
    private bool _stopping;
    private Exception? _failure;

    public GroupCommitWriter(RunStateStore store, TimeSpan interval)
    {
        _store = store;
        _interval = interval;
        _thread = new Thread(Loop) { IsBackground = true, Name = "batchrunner state writer" };
        _thread.Start();
    }

    /// <summary>Queues a transition; throws the error of an earlier commit that failed.</summary>
    public void Record(StateTransition transition)
    {
        lock (_gate)
        {
            ThrowIfFailed();
            _pending.Add(transition);
            _queued++;
            if (_pending.Count == 1)
            {
                Monitor.PulseAll(_gate);
            }
        }
    }

    /// <summary>Returns once everything queued before the call is committed; throws if a commit failed.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            var target = _queued;
            _flushWaiters++;
            Monitor.PulseAll(_gate);
            try
            {
                while (_committed < target && _failure is null)
                {
                    Monitor.Wait(_gate);
                }
            }
            finally
            {
                _flushWaiters--;
            }

            ThrowIfFailed();
        }
    }

    /// <summary>Commits what is queued and stops the thread; a failed commit is not thrown here (Flush throws it).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        _thread.Join();
    }

    private void Loop()
    {
        while (true)
        {
            List<StateTransition> batch;
            lock (_gate)
            {
                while (_pending.Count == 0 && !_stopping)
                {
                    Monitor.Wait(_gate);
                }

                if (_pending.Count == 0)
                {
                    return;
                }

                // Let the group grow for an interval, unless someone waits for it.
                if (_flushWaiters == 0 && !_stopping)
                {
                    Monitor.Wait(_gate, _interval);
                }

                batch = _pending;
                _pending = [];
            }

            Exception? failure = null;
            if (Volatile.Read(ref _failure) is null)
            {
                try
                {
                    _store.Record(batch);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            }

            lock (_gate)
            {
                _failure ??= failure;
                _committed += batch.Count;
                Monitor.PulseAll(_gate);
            }
        }
    }

    private void ThrowIfFailed()
    {
        if (_failure is not null)
        {
            throw new IOException($"the run's state could not be written: {_failure.Message}", _failure);
        }
    }
}
