namespace BatchRunner.Core.Costs;

/// <summary>What earlier runs of a BatchJob did: their attempts, the indexes those ran, and how long an attempt took.</summary>
/// <param name="BilledSeconds">The mean an attempt is billed for where a backend bills a minute at least (Fargate).</param>
public sealed record RunHistory(int Runs, int Indexes, int Attempts, double MeanSeconds, double BilledSeconds);

/// <summary>A run's projected wall time and usage, and its cost where its backend has a price.</summary>
public sealed record Projection(double AttemptsPerIndex, TimeSpan Wall, double VcpuHours, double GibHours, double? Cost);

/// <summary>Projects a run from the history of its BatchJob: as many attempts per index, as long each, at its parallelism.</summary>
public static class CostProjection
{
    /// <param name="vcpus">vCPUs an attempt is billed for: the requests, or the task size a backend rounds them up to.</param>
    /// <param name="gib">Memory an attempt is billed for, in GiB.</param>
    /// <param name="billsMinimum">Whether the backend bills a minute at least (Fargate): its attempts count <see cref="RunHistory.BilledSeconds"/>.</param>
    public static Projection? Project(RunHistory history, int completions, int parallelism, double vcpus, double gib, bool billsMinimum, Price? price)
    {
        if (history.Indexes == 0 || history.Attempts == 0)
        {
            return null;
        }

        var perIndex = (double)history.Attempts / history.Indexes;
        var attempts = completions * perIndex;
        var wall = TimeSpan.FromSeconds(Math.Ceiling(attempts / Math.Max(1, Math.Min(parallelism, completions))) * history.MeanSeconds);
        var seconds = attempts * (billsMinimum ? history.BilledSeconds : history.MeanSeconds);
        var (vcpuHours, gibHours) = (seconds * vcpus / 3600, seconds * gib / 3600);
        return new Projection(perIndex, wall, vcpuHours, gibHours, price is null ? null : vcpuHours * price.VcpuHour + gibHours * price.GibHour);
    }
}
