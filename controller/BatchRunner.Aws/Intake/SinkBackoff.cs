namespace BatchRunner.Aws.Intake;

/// <summary>
/// Pauses receiving while the sink fails: half a second after the first failure, doubling up to 30 s with each
/// one after it, and back to no pause at the first success. A broken API server then costs a few calls a
/// minute, not the whole queue's worth of receives.
/// </summary>
internal sealed class SinkBackoff(TimeProvider time)
{
    private static readonly TimeSpan MaxPause = TimeSpan.FromSeconds(30);
    private readonly Lock _gate = new();
    private int _failures;
    private DateTimeOffset _pausedUntil = DateTimeOffset.MinValue;

    public void Failed()
    {
        lock (_gate)
        {
            _failures++;
            var pause = TimeSpan.FromMilliseconds(Math.Min(MaxPause.TotalMilliseconds, 500 * Math.Pow(2, Math.Min(_failures - 1, 10))));
            _pausedUntil = time.GetUtcNow() + pause;
        }
    }

    public void Succeeded()
    {
        lock (_gate)
        {
            _failures = 0;
            _pausedUntil = DateTimeOffset.MinValue;
        }
    }

    public async Task WaitAsync(CancellationToken cancellation)
    {
        TimeSpan left;
        lock (_gate)
        {
            left = _pausedUntil - time.GetUtcNow();
        }

        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left, time, cancellation).ConfigureAwait(false);
        }
    }
}
