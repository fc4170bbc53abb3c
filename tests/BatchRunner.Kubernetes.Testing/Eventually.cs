namespace BatchRunner.Kubernetes.Testing;

/// <summary>Polls a condition until it holds: controllers converge, they do not answer.</summary>
public static class Eventually
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Evaluates <paramref name="condition"/> every 100 ms until it returns true, and throws a
    /// <see cref="TimeoutException"/> naming <paramref name="what"/> (and the last exception, if any) when
    /// <paramref name="timeout"/> passes first. Exceptions from the condition count as "not yet".
    /// </summary>
    public static async Task TrueAsync(
        Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                last = e;
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException($"{what}: not so after {timeout.TotalSeconds:0.#} s", last);
            }

            await Task.Delay(Interval, cancellationToken);
        }
    }
}
