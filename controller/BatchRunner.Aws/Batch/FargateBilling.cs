namespace BatchRunner.Aws.Batch;

/// <summary>
/// What Fargate bills for an attempt: the task size it runs on (the spec's requests rounded up to a size Fargate
/// offers), per second, with a one-minute minimum. Measured from the attempt's own start and end, so it is a floor:
/// Fargate also bills the image pull and the task's start.
/// </summary>
public static class FargateBilling
{
    /// <summary>Spot, as the BatchJob asks for it (<c>batchrunner.io/capacity: spot</c>), else on-demand.</summary>
    public static string CapacityOf(bool spot) => spot ? "spot" : "on-demand";

    /// <returns>Billed vCPU-seconds and GiB-seconds; null when no task size holds the requests (nothing ran).</returns>
    public static (double VcpuSeconds, double GibSeconds)? Billed(long milliCpu, long memoryBytes, double durationSeconds)
    {
        if (!FargateResources.TryMap(milliCpu, memoryBytes, out var size, out _))
        {
            return null;
        }

        var seconds = BilledSeconds(durationSeconds);
        return (size.Cores * seconds, size.MemoryMiB / 1024.0 * seconds);
    }

    /// <summary>The seconds Fargate bills for an attempt that took <paramref name="durationSeconds"/>: whole seconds, one minute at least.</summary>
    public static double BilledSeconds(double durationSeconds) => Math.Max(60, Math.Ceiling(Math.Max(0, durationSeconds)));

    /// <summary>
    /// What a second of one index costs at <paramref name="prices"/>: the task size the requests round up to, at the Spot
    /// price when the BatchJob asks for Spot; null without a price. The one-minute minimum is the runtime's
    /// (<see cref="BilledSeconds"/>). Requests no size holds (refused at dispatch) are priced as requested.
    /// </summary>
    public static double? PerIndexSecond(BatchRunner.Core.Spec.BatchJob job, BatchRunner.Core.Costs.PriceTable prices)
    {
        if (prices.For(BatchRunner.Core.Spec.Backend.AwsBatch.Name, CapacityOf(AwsBatchDispatcher.AsksForSpot(job))) is not { } price)
        {
            return null;
        }

        var (vcpu, gib) = Billed(job.Spec.Resources.MilliCpu, job.Spec.Resources.MemoryBytes, 60) is { } minute
            ? (minute.VcpuSeconds / 60, minute.GibSeconds / 60)
            : (job.Spec.Resources.MilliCpu / 1000.0, job.Spec.Resources.MemoryBytes / (double)(1L << 30));
        return (vcpu * price.VcpuHour + gib * price.GibHour) / 3600;
    }
}
