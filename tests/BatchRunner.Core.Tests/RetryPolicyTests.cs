using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Tests;

public class RetryPolicyTests
{
    [Theory]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(4, 8)]
    [InlineData(5, 16)]
    [InlineData(6, 30)]
    [InlineData(7, 30)]
    [InlineData(1_000, 30)]
    [InlineData(int.MaxValue, 30)]
    public void Backoff_doubles_from_the_base_and_is_capped(int nextAttempt, double expectedSeconds)
    {
        var policy = new RetryPolicy(Attempts: 10, BackoffSeconds: 2, MaxBackoffSeconds: 30);

        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), policy.BackoffBefore(nextAttempt));
    }

    [Fact]
    public void A_cap_that_is_never_reached_leaves_the_backoff_exponential()
    {
        var policy = new RetryPolicy(Attempts: 10, BackoffSeconds: 0.5, MaxBackoffSeconds: 1_000_000);

        Assert.Equal([0.5, 1, 2, 4, 8, 16, 32, 64, 128], Enumerable.Range(2, 9).Select(a => policy.BackoffBefore(a).TotalSeconds));
    }

    [Fact]
    public void Zero_backoff_retries_at_once()
    {
        var policy = new RetryPolicy(Attempts: 3, BackoffSeconds: 0, MaxBackoffSeconds: 0);

        Assert.All(Enumerable.Range(2, 5), attempt => Assert.Equal(TimeSpan.Zero, policy.BackoffBefore(attempt)));
    }

    [Fact]
    public void The_default_policy_makes_one_attempt_and_waits_one_second_before_a_second()
    {
        Assert.Equal(1, RetryPolicy.Default.Attempts);
        Assert.Equal(TimeSpan.FromSeconds(1), RetryPolicy.Default.BackoffBefore(2));
        Assert.Equal(TimeSpan.FromSeconds(300), RetryPolicy.Default.BackoffBefore(20));
    }
}
