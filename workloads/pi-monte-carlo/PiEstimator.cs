namespace BatchRunner.Workloads.PiMonteCarlo;

/// <summary>Points drawn and how many fell inside the quarter circle.</summary>
public sealed record PiEstimate(long Samples, long Inside)
{
    /// <summary>The quarter circle covers π/4 of the unit square.</summary>
    public double Value => 4.0 * Inside / Samples;

    public double AbsoluteError => Math.Abs(Value - Math.PI);
}

/// <summary>Estimates π by drawing uniform points in the unit square.</summary>
public static class PiEstimator
{
    public static PiEstimate Estimate(long samples, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samples, 1);
        ArgumentNullException.ThrowIfNull(random);
        long inside = 0;
        for (long sample = 0; sample < samples; sample++)
        {
            var x = random.NextDouble();
            var y = random.NextDouble();
            if (x * x + y * y <= 1.0)
            {
                inside++;
            }
        }
        return new PiEstimate(samples, inside);
    }
}
