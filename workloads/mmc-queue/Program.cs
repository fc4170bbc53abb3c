namespace BatchRunner.Workloads.MmcQueue;

/// <summary>
/// Entry point: reads one sweep index's parameters, simulates the queue and writes one
/// result row with the simulated and the Erlang C figures side by side.
/// </summary>
public static class Program
{
    private const string WorkloadName = "mmc-queue";
    private const long DefaultCustomers = 100_000;
    // Half of long's range each, so warmup + customers cannot overflow.
    private const long MaximumCustomers = long.MaxValue / 2;

    public static int Main() => Run(WorkloadContext.ReadProcessEnvironment(), Console.Error);

    /// <summary>Runs the workload against the given BATCHRUNNER_* variables; returns the exit code.</summary>
    public static int Run(IReadOnlyDictionary<string, string?> environment, TextWriter error) =>
        WorkloadContext.Run(WorkloadName, environment, error, context =>
        {
            var settings = ReadSettings(context);
            context.WarnAboutUnreadParameters();

            var statistics = MmcQueueSimulation.Run(settings, new Random(context.Seed));
            var (lambda, mu, c) = (settings.ArrivalRate, settings.ServiceRate, settings.Servers);
            context.WriteResultRow(row =>
            {
                row.WriteNumber("mean_wait", statistics.MeanWait);
                row.WriteNumber("mean_time_in_system", statistics.MeanTimeInSystem);
                row.WriteNumber("utilisation", statistics.Utilisation);
                row.WriteNumber("p_wait", statistics.ProbabilityOfWaiting);
                row.WriteNumber("erlang_c_p_wait", ErlangC.ProbabilityOfWaiting(lambda, mu, c));
                row.WriteNumber("erlang_c_mean_wait", ErlangC.MeanWait(lambda, mu, c));
                row.WriteNumber("customers_measured", statistics.CustomersMeasured);
            });
        });

    private static MmcQueueSettings ReadSettings(WorkloadContext context)
    {
        var arrivalRate = context.GetPositiveDouble("arrival_rate");
        var serviceRate = context.GetPositiveDouble("service_rate");
        var servers = (int)context.GetInteger("servers", minimum: 1, maximum: int.MaxValue);
        var customers = context.GetInteger("customers", minimum: 1, MaximumCustomers, DefaultCustomers);
        var warmup = context.GetInteger("warmup", minimum: 0, MaximumCustomers, defaultValue: customers / 10);

        var utilisation = arrivalRate / (servers * serviceRate);
        if (!(utilisation < 1))
        {
            throw new WorkloadParameterException(
                $"the queue is unstable: arrival_rate / (servers * service_rate) = {arrivalRate} / ({servers} * {serviceRate}) = {utilisation:G4}; it must be below 1");
        }
        return new MmcQueueSettings(arrivalRate, serviceRate, servers, customers, warmup);
    }
}
