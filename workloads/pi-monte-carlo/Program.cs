namespace BatchRunner.Workloads.PiMonteCarlo;

/// <summary>Entry point: reads one sweep index's parameters and writes one row with the estimate of π.</summary>
public static class Program
{
    private const string WorkloadName = "pi-monte-carlo";
    private const long DefaultSamples = 1_000_000;

    public static int Main() => Run(WorkloadContext.ReadProcessEnvironment(), Console.Error);

    /// <summary>Runs the workload against the given BATCHRUNNER_* variables; returns the exit code.</summary>
    public static int Run(IReadOnlyDictionary<string, string?> environment, TextWriter error) =>
        WorkloadContext.Run(WorkloadName, environment, error, context =>
        {
            var samples = context.GetInteger("samples", minimum: 1, maximum: long.MaxValue, DefaultSamples);
            context.WarnAboutUnreadParameters();

            var estimate = PiEstimator.Estimate(samples, new Random(context.Seed));
            context.WriteResultRow(row =>
            {
                row.WriteNumber("pi_estimate", estimate.Value);
                row.WriteNumber("abs_error", estimate.AbsoluteError);
                row.WriteNumber("samples_drawn", estimate.Samples);
                row.WriteNumber("inside", estimate.Inside);
            });
        });
}
