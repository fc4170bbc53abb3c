using BatchRunner.Workloads.MmcQueue;

namespace BatchRunner.Workloads.Tests;

public class MmcQueueSimulationTests
{
    // One million customers keeps the relative error of Wq near 1% at ρ = 0.8 (checked over many seeds),
    // so 5% is a wide margin; a run takes a few hundred milliseconds.
    [Theory]
    [InlineData(1.6, 1.0, 2)]
    [InlineData(0.8, 1.0, 1)]
    public void Simulated_mean_wait_is_within_5_percent_of_Erlang_C_for_rho_0_8(double lambda, double mu, int servers)
    {
        var settings = new MmcQueueSettings(lambda, mu, servers, Customers: 1_000_000, WarmupCustomers: 100_000);

        var statistics = MmcQueueSimulation.Run(settings, new Random(12345));

        AssertWithinRelative(ErlangC.MeanWait(lambda, mu, servers), statistics.MeanWait, 0.05);
        AssertWithinRelative(ErlangC.ProbabilityOfWaiting(lambda, mu, servers), statistics.ProbabilityOfWaiting, 0.02);
        AssertWithinRelative(0.8, statistics.Utilisation, 0.01);
        AssertWithinRelative(1 / mu, statistics.MeanTimeInSystem - statistics.MeanWait, 0.01);
        Assert.Equal(1_000_000, statistics.CustomersMeasured);
    }

    [Fact]
    public void Lightly_loaded_servers_rarely_make_customers_wait()
    {
        var settings = new MmcQueueSettings(ArrivalRate: 1.0, ServiceRate: 1.0, Servers: 10, Customers: 50_000, WarmupCustomers: 1_000);

        var statistics = MmcQueueSimulation.Run(settings, new Random(3));

        Assert.InRange(statistics.ProbabilityOfWaiting, 0.0, 1e-4);
        AssertWithinRelative(0.1, statistics.Utilisation, 0.03);
    }

    [Fact]
    public void Same_random_seed_gives_identical_statistics()
    {
        var settings = new MmcQueueSettings(0.9, 1.0, 1, Customers: 20_000, WarmupCustomers: 2_000);

        var first = MmcQueueSimulation.Run(settings, new Random(99));
        var second = MmcQueueSimulation.Run(settings, new Random(99));
        var otherSeed = MmcQueueSimulation.Run(settings, new Random(100));

        Assert.Equal(first, second);
        Assert.NotEqual(first.MeanWait, otherSeed.MeanWait);
    }

    private static void AssertWithinRelative(double expected, double actual, double relativeTolerance) =>
        Assert.True(
            Math.Abs(actual - expected) <= relativeTolerance * Math.Abs(expected),
            $"expected {expected} within {relativeTolerance:P0}, got {actual}");
}
