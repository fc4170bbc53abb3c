using System.Globalization;

namespace BatchRunner.Aws.Batch;

/// <summary>A Fargate task size: vCPU as AWS Batch writes it (<c>0.25</c> … <c>16</c>) and memory in MiB.</summary>
public sealed record FargateSize(string Vcpu, int MemoryMiB)
{
    public double Cores => double.Parse(Vcpu, CultureInfo.InvariantCulture);
}

/// <summary>
/// Maps <c>spec.resources</c> (Kubernetes requests) onto the task sizes Fargate offers: the smallest size with at
/// least the CPU and at least the memory asked for, as a Kubernetes scheduler gives at least the requests. What
/// no size holds is refused, listing the sizes there are.
/// </summary>
public static class FargateResources
{
    /// <summary>Fargate's sizes: per vCPU, the memory range in MiB and its step (AWS Batch / ECS documentation).</summary>
    private static readonly (string Vcpu, int MinMiB, int MaxMiB, int StepMiB)[] Ranges =
    [
        ("0.25", 512, 2048, 512),
        ("0.5", 1024, 4096, 1024),
        ("1", 2048, 8192, 1024),
        ("2", 4096, 16384, 1024),
        ("4", 8192, 30720, 1024),
        ("8", 16384, 61440, 4096),
        ("16", 32768, 122880, 8192),
    ];

    /// <summary>Every valid size, smallest first.</summary>
    public static IEnumerable<FargateSize> Sizes() =>
        Ranges.SelectMany(r => MemoryValues(r).Select(m => new FargateSize(r.Vcpu, m)));

    /// <summary>0.25 vCPU uses 512 MiB and 1, 2 GiB; the other sizes their range in steps.</summary>
    private static IEnumerable<int> MemoryValues((string Vcpu, int MinMiB, int MaxMiB, int StepMiB) range) =>
        range.Vcpu == "0.25" ? [512, 1024, 2048] : Enumerable.Range(0, ((range.MaxMiB - range.MinMiB) / range.StepMiB) + 1).Select(i => range.MinMiB + (i * range.StepMiB));

    /// <summary>The size to run on, or an error naming what was asked and what Fargate offers.</summary>
    public static bool TryMap(long milliCpu, long memoryBytes, out FargateSize size, out string error)
    {
        var memoryMiB = (long)Math.Ceiling(memoryBytes / (double)(1 << 20));
        var found = Sizes().FirstOrDefault(s => s.Cores * 1000 >= milliCpu && s.MemoryMiB >= memoryMiB);
        if (found is not null)
        {
            size = found;
            error = "";
            return true;
        }

        size = new FargateSize("0", 0);
        var offered = string.Join("; ", Ranges.Select(r => r.Vcpu == "0.25"
            ? "0.25 vCPU with 512, 1024 or 2048 MiB"
            : $"{r.Vcpu} vCPU with {r.MinMiB}-{r.MaxMiB} MiB in steps of {r.StepMiB}"));
        error = string.Create(CultureInfo.InvariantCulture,
            $"spec.resources: Fargate has no task size with {milliCpu / 1000.0:0.###} vCPU and {memoryMiB} MiB; it offers {offered}");
        return false;
    }
}
