using BatchRunner.Aws.Batch;

namespace BatchRunner.Aws.Tests.Batch;

public sealed class FargateResourcesTests
{
    [Theory]
    [InlineData("a quarter core and 512 MiB fit the smallest size", 250, 512, "0.25", 512)]
    [InlineData("the spec's default", 1000, 2048, "1", 2048)]
    [InlineData("1.5 cores round up to 2, memory to the smallest of that size", 1500, 3072, "2", 4096)]
    [InlineData("memory beyond a size's range moves to the next size", 1000, 9216, "2", 9216)]
    [InlineData("8 cores step by 4 GiB", 8000, 20000, "8", 20480)]
    [InlineData("the largest size", 16000, 122880, "16", 122880)]
    public void Requests_map_to_the_smallest_fargate_size_that_holds_them(string why, long milliCpu, long memoryMiB, string vcpu, int memory)
    {
        _ = why;
        Assert.True(FargateResources.TryMap(milliCpu, memoryMiB << 20, out var size, out var error), error);
        Assert.Equal(new FargateSize(vcpu, memory), size);
    }

    [Theory]
    [InlineData(32_000, 8192)]
    [InlineData(1000, 200L * 1024)]
    public void Requests_no_size_holds_are_refused_listing_every_size(long milliCpu, long memoryMiB)
    {
        Assert.False(FargateResources.TryMap(milliCpu, memoryMiB << 20, out _, out var error));
        Assert.StartsWith("spec.resources: Fargate has no task size with", error, StringComparison.Ordinal);
        Assert.Contains("0.25 vCPU with 512, 1024 or 2048 MiB", error, StringComparison.Ordinal);
        Assert.Contains("4 vCPU with 8192-30720 MiB in steps of 1024", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_size_is_a_combination_aws_documents()
    {
        var sizes = FargateResources.Sizes().ToList();
        Assert.Equal(3 + 4 + 7 + 13 + 23 + 12 + 12, sizes.Count);
        Assert.All(sizes, s => Assert.InRange(s.MemoryMiB / s.Cores, 2048, 8192));
    }
}
