using BatchRunner.Workloads.PiMonteCarlo;

namespace BatchRunner.Workloads.Tests;

public class PiMonteCarloTests
{
    [Fact]
    public void Pi_estimate_from_a_million_samples_is_within_0_01()
    {
        // The standard error at n = 10⁶ is 4·sqrt(p(1−p)/n) ≈ 0.0016, so 0.01 is six of them.
        var outcome = WorkloadHarness.RunInProcess(Program.Run, """{"samples":1000000}""", seed: 2024);

        Assert.Equal(0, outcome.ExitCode);
        var row = outcome.SingleRow();
        var estimate = row.GetProperty("pi_estimate").GetDouble();
        Assert.InRange(estimate, Math.PI - 0.01, Math.PI + 0.01);
        Assert.Equal(Math.Abs(estimate - Math.PI), row.GetProperty("abs_error").GetDouble(), 15);
        Assert.Equal(1_000_000, row.GetProperty("samples_drawn").GetInt64());
        Assert.Equal(estimate, 4.0 * row.GetProperty("inside").GetInt64() / 1_000_000, 15);
    }

    [Fact]
    public void Samples_default_to_one_million()
    {
        var outcome = WorkloadHarness.RunInProcess(Program.Run, "{}");

        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal(1_000_000, outcome.SingleRow().GetProperty("samples_drawn").GetInt64());
    }

    [Fact]
    public void Same_seed_gives_identical_output()
    {
        var first = WorkloadHarness.RunInProcess(Program.Run, """{"samples":10000}""", seed: 5);
        var second = WorkloadHarness.RunInProcess(Program.Run, """{"samples":10000}""", seed: 5);
        var otherSeed = WorkloadHarness.RunInProcess(Program.Run, """{"samples":10000}""", seed: 6);

        Assert.NotNull(first.Results);
        Assert.Equal(first.Results, second.Results);
        Assert.NotEqual(first.Results, otherSeed.Results);
    }

    [Theory]
    [InlineData("""{"samples":0}""")]
    [InlineData("""{"samples":"many"}""")]
    public void Invalid_samples_exits_2_naming_it(string parametersJson)
    {
        var outcome = WorkloadHarness.RunInProcess(Program.Run, parametersJson);

        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("'samples'", outcome.Error, StringComparison.Ordinal);
        Assert.Null(outcome.Results);
    }

    [Fact]
    public void Negative_seed_exits_2_naming_the_variable()
    {
        var outcome = WorkloadHarness.RunInProcess(Program.Run, "{}", seed: -1);

        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("BATCHRUNNER_SEED", outcome.Error, StringComparison.Ordinal);
    }
}
