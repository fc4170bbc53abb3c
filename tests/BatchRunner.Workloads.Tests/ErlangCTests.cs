using BatchRunner.Workloads.MmcQueue;

namespace BatchRunner.Workloads.Tests;

public class ErlangCTests
{
    // Hand-computed from the textbook M/M/2 closed form P(wait) = 2ρ² / (1 + ρ), Wq = P(wait) / (2μ − λ).
    [Theory]
    [InlineData(1.0, 1.0, 1.0 / 3, 1.0 / 3)]        // ρ = 0.5
    [InlineData(1.6, 1.0, 32.0 / 45, 16.0 / 9)]     // ρ = 0.8
    [InlineData(3.0, 2.5, 0.45, 0.225)]             // ρ = 0.6
    public void ErlangC_matches_textbook_value_for_two_servers(double lambda, double mu, double probabilityOfWaiting, double meanWait)
    {
        Assert.Equal(probabilityOfWaiting, ErlangC.ProbabilityOfWaiting(lambda, mu, 2), 12);
        Assert.Equal(meanWait, ErlangC.MeanWait(lambda, mu, 2), 12);
    }

    [Theory]
    [InlineData(0.2, 2.0)]
    [InlineData(1.0, 2.0)]
    [InlineData(1.9, 2.0)]
    public void ErlangC_with_one_server_reduces_to_MM1(double lambda, double mu)
    {
        var rho = lambda / mu;

        Assert.Equal(rho, ErlangC.ProbabilityOfWaiting(lambda, mu, 1), 12);
        Assert.Equal(rho / (mu - lambda), ErlangC.MeanWait(lambda, mu, 1), 12);
    }

    [Theory]
    [InlineData(190.0, 200)]
    [InlineData(150.0, 200)]
    [InlineData(45.0, 50)]
    public void ErlangC_for_many_servers_matches_the_log_space_factorial_formula(double offeredLoad, int servers)
    {
        var expected = LogSpaceProbabilityOfWaiting(offeredLoad, servers);

        var actual = ErlangC.ProbabilityOfWaiting(offeredLoad, 1.0, servers);

        Assert.InRange(actual, 0.0, 1.0);
        Assert.Equal(expected, actual, 1e-9);
    }

    [Theory]
    [InlineData(2.0, 1.0, 2)]
    [InlineData(2.5, 1.0, 2)]
    [InlineData(0.0, 1.0, 2)]
    [InlineData(1.0, 1.0, 0)]
    public void ErlangC_rejects_unstable_or_meaningless_queues(double lambda, double mu, int servers)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ErlangC.ProbabilityOfWaiting(lambda, mu, servers));
    }

    /// <summary>
    /// The direct formula C = (aᶜ/c! · c/(c−a)) / (Σₖ₍ₖ₌₀..c₋₁₎ aᵏ/k! + aᶜ/c! · c/(c−a)), evaluated with
    /// logarithms and log-sum-exp: an independent route to the same number.
    /// </summary>
    private static double LogSpaceProbabilityOfWaiting(double a, int c)
    {
        var logTerms = new double[c + 1];
        var logFactorial = 0.0;
        for (var k = 0; k <= c; k++)
        {
            logFactorial += k == 0 ? 0 : Math.Log(k);
            logTerms[k] = k * Math.Log(a) - logFactorial;
        }
        var logWaitingTerm = logTerms[c] + Math.Log(c / (c - a));
        var largest = Math.Max(logTerms.Take(c).Max(), logWaitingTerm);
        var sum = logTerms.Take(c).Sum(term => Math.Exp(term - largest)) + Math.Exp(logWaitingTerm - largest);
        return Math.Exp(logWaitingTerm - largest) / sum;
    }
}
