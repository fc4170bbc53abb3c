using System.Diagnostics;
using BatchRunner.Aws.Batch;

namespace BatchRunner.Aws.Tests.Batch;

public sealed class SubmitRateLimiterTests
{
    [Fact]
    public async Task After_a_burst_of_one_second_tokens_come_at_the_configured_rate()
    {
        using var limiter = new SubmitRateLimiter(20);
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 20; i++)
        {
            await limiter.AcquireAsync(default);
        }

        var burst = clock.Elapsed;
        for (var i = 0; i < 20; i++)
        {
            await limiter.AcquireAsync(default);
        }

        // A lower bound only: a slow machine makes it longer, never shorter.
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(850), $"40 tokens at 20/s after a burst of 20 took {clock.Elapsed}");
        Assert.True(burst < clock.Elapsed);
    }

    [Fact]
    public void Settings_are_validated_and_name_what_is_missing()
    {
        var options = new AwsBatchOptions { Enabled = true };
        var results = new List<System.ComponentModel.DataAnnotations.ValidationResult>();

        Assert.False(System.ComponentModel.DataAnnotations.Validator.TryValidateObject(options, new(options), results, validateAllProperties: true));
        Assert.Contains(results, r => r.ErrorMessage!.Contains("BatchRunner:AwsBatch:JobQueue", StringComparison.Ordinal));
        Assert.Contains(results, r => r.ErrorMessage!.Contains("BatchRunner:AwsBatch:ExecutionRoleArn", StringComparison.Ordinal));
        var off = new AwsBatchOptions();
        Assert.True(System.ComponentModel.DataAnnotations.Validator.TryValidateObject(off, new(off), results, validateAllProperties: true));
    }
}
