namespace BatchRunner.Local.Execution;

/// <summary>Live counters of a run, safe to read from another thread (the progress display).</summary>
public sealed class RunProgress
{
    private int _succeeded;
    private int _failed;
    private int _running;
    private int _retrying;
    private int _finishedThisInvocation;

    // The latest runtimes of succeeded attempts (a ring), for a queue's estimates.
    private const int RuntimesKept = 256;
    private readonly TimeSpan[] _runtimes = new TimeSpan[RuntimesKept];
    private long _runtimesSeen;

    public RunProgress(int total, int alreadySucceeded, DateTimeOffset startedAt, int alreadyFailed = 0)
    {
        Total = total;
        _succeeded = alreadySucceeded;
        _failed = alreadyFailed;
        StartedAt = startedAt;
    }

    public int Total { get; }
    public DateTimeOffset StartedAt { get; }
    public int Succeeded => Volatile.Read(ref _succeeded);
    public int Failed => Volatile.Read(ref _failed);
    public int Running => Volatile.Read(ref _running);

    /// <summary>Indexes waiting out a retry backoff.</summary>
    public int Retrying => Volatile.Read(ref _retrying);

    public int Pending => Math.Max(0, Total - Succeeded - Failed - Running - Retrying);

    /// <summary>Time left at the rate indexes finished so far in this invocation; null until one has.</summary>
    public TimeSpan? EstimateRemaining(DateTimeOffset now)
    {
        var finished = Volatile.Read(ref _finishedThisInvocation);
        var left = Total - Succeeded - Failed;
        if (finished == 0 || left <= 0)
        {
            return left <= 0 ? TimeSpan.Zero : null;
        }

        var perIndex = (now - StartedAt) / finished;
        return perIndex * left;
    }

    /// <summary>Runtimes of this invocation's latest succeeded attempts (up to 256).</summary>
    public IReadOnlyList<TimeSpan> RecentRuntimes()
    {
        lock (_runtimes)
        {
            return _runtimes.Take((int)Math.Min(_runtimesSeen, RuntimesKept)).ToArray();
        }
    }

    internal void RuntimeObserved(TimeSpan runtime)
    {
        lock (_runtimes)
        {
            _runtimes[_runtimesSeen++ % RuntimesKept] = runtime;
        }
    }

    internal void AttemptStarted() => Interlocked.Increment(ref _running);

    internal void AttemptEnded() => Interlocked.Decrement(ref _running);

    internal void BackoffStarted() => Interlocked.Increment(ref _retrying);

    internal void BackoffEnded() => Interlocked.Decrement(ref _retrying);

    internal void IndexSucceeded()
    {
        Interlocked.Increment(ref _succeeded);
        Interlocked.Increment(ref _finishedThisInvocation);
    }

    internal void IndexFailed()
    {
        Interlocked.Increment(ref _failed);
        Interlocked.Increment(ref _finishedThisInvocation);
    }
}
