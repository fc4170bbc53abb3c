using System.Diagnostics;
using BatchRunner.Aws.Batch;

namespace BatchRunner.Aws.Tests.Batch;

public sealed class SubmitRateLimiterTests
{
    [Fact]
    public async Task After_a_short_burst_tokens_come_at_the_configured_rate()
    {
        using var limiter = new SubmitRateLimiter(20);
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 4; i++)
        {
            await limiter.AcquireAsync(default);
        }

        var burst = clock.Elapsed;
        for (var i = 0; i < 20; i++)
        {
            await limiter.AcquireAsync(default);
        }

        // Lower bounds only: a slow machine makes it longer, never shorter. 20 tokens after the burst take 1 s at 20/s.
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(900), $"24 tokens at 20/s after a burst of 4 took {clock.Elapsed}");
        Assert.True(burst < TimeSpan.FromMilliseconds(900), $"the burst of 4 waited {burst}");
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
