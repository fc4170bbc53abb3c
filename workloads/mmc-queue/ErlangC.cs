namespace BatchRunner.Workloads.MmcQueue;

/// <summary>
/// Analytic steady-state results for the M/M/c queue (Erlang C), used to check the simulation.
/// </summary>
public static class ErlangC
{
    /// <summary>
    /// Probability that an arriving customer has to wait, C(c, a) with offered load a = λ/μ.
    /// </summary>
    public static double ProbabilityOfWaiting(double lambda, double mu, int c)
    {
        var utilisation = Validate(lambda, mu, c);
        var offeredLoad = lambda / mu;
        // Erlang B by its recurrence B(k) = a·B(k-1) / (k + a·B(k-1)): no factorials or powers,
        // so it neither overflows nor loses precision for hundreds of servers.
        var blocking = 1.0;
        for (var servers = 1; servers <= c; servers++)
        {
            blocking = offeredLoad * blocking / (servers + offeredLoad * blocking);
        }
        return blocking / (1 - utilisation * (1 - blocking));
    }

    /// <summary>Mean time spent waiting in the queue, Wq = C(c, a) / (cμ − λ).</summary>
    public static double MeanWait(double lambda, double mu, int c) =>
        ProbabilityOfWaiting(lambda, mu, c) / (c * mu - lambda);

    /// <summary>Checks the arguments and returns the utilisation ρ = λ / (cμ).</summary>
    private static double Validate(double lambda, double mu, int c)
    {
        if (!(lambda > 0) || !double.IsFinite(lambda))
        {
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "The arrival rate must be a positive finite number.");
        }
        if (!(mu > 0) || !double.IsFinite(mu))
        {
            throw new ArgumentOutOfRangeException(nameof(mu), mu, "The service rate must be a positive finite number.");
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(c, 1);
        var utilisation = lambda / (c * mu);
        return utilisation < 1
            ? utilisation
            : throw new ArgumentOutOfRangeException(nameof(lambda), lambda, $"The queue is unstable: ρ = λ/(cμ) = {utilisation} must be below 1.");
    }
}
