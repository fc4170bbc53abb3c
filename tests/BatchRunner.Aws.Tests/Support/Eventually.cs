namespace BatchRunner.Aws.Tests.Support;

public static class Eventually
{
    /// <summary>Polls until the condition holds; fails with <paramref name="what"/> after the timeout.</summary>
    public static async Task WaitAsync(Func<Task<bool>> condition, string what, double seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition().ConfigureAwait(false))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not within {seconds} s: {what}");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }
    }

    public static Task WaitAsync(Func<bool> condition, string what, double seconds = 30) =>
        WaitAsync(() => Task.FromResult(condition()), what, seconds);
}
