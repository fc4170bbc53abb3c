using BatchRunner.Aws.Batch;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>What Fargate bills for an attempt, against cases worked by hand.</summary>
public sealed class FargateBillingTests
{
    [Theory]
    // 1 vCPU, 2 GiB for 90.2 s: billed per second, rounded up: 91 s.
    [InlineData(1000, 2048, 90.2, 91.0, 182.0)]
    // Under a minute is a minute.
    [InlineData(1000, 2048, 12.0, 60.0, 120.0)]
    [InlineData(1000, 2048, 0.0, 60.0, 120.0)]
    // 300m and 700Mi run on 0.5 vCPU with 1 GiB, the smallest size that holds them: that is what is billed.
    [InlineData(300, 700, 120.0, 60.0, 120.0)]
    // 250m and 512Mi fit the smallest size exactly.
    [InlineData(250, 512, 3600.0, 900.0, 1800.0)]
    // 2 vCPU with 5000 MiB round up to 5 GiB.
    [InlineData(2000, 5000, 100.0, 200.0, 500.0)]
    public void An_attempt_is_billed_at_its_task_size_per_second_with_a_minute_at_least(long milliCpu, long memoryMiB, double seconds, double vcpuSeconds, double gibSeconds)
    {
        var billed = FargateBilling.Billed(milliCpu, memoryMiB << 20, seconds);

        Assert.Equal((vcpuSeconds, gibSeconds), billed);
    }

    [Fact]
    public void Requests_no_task_size_holds_bill_nothing() =>
        Assert.Null(FargateBilling.Billed(32_000, 1L << 30, 60));

    [Fact]
    public void Spot_is_asked_for_with_the_capacity_annotation_or_label()
    {
        Assert.Equal("spot", FargateBilling.CapacityOf(AwsBatchDispatcher.AsksForSpot(BatchRig.Job(metadata: ", annotations: {batchrunner.io/capacity: Spot}"))));
        Assert.Equal("spot", FargateBilling.CapacityOf(AwsBatchDispatcher.AsksForSpot(BatchRig.Job(metadata: ", labels: {batchrunner.io/capacity: spot}"))));
        Assert.Equal("on-demand", FargateBilling.CapacityOf(AwsBatchDispatcher.AsksForSpot(BatchRig.Job())));
    }

    [Fact]
    public void A_budget_prices_an_index_second_at_its_billed_task_size_and_on_spot_when_asked()
    {
        var prices = BatchRunner.Core.Costs.PriceTable.Defaults;
        var onDemand = prices.For("aws-batch", "on-demand")!;
        var spot = prices.For("aws-batch", "spot")!;
        // 300m and 700Mi run on 0.5 vCPU with 1 GiB.
        var small = BatchRig.Job(extra: "  resources: {cpu: 300m, memory: 700Mi}");
        var spotted = BatchRig.Job(extra: "  resources: {cpu: 300m, memory: 700Mi}", metadata: ", annotations: {batchrunner.io/capacity: spot}");

        Assert.Equal((0.5 * onDemand.VcpuHour + 1 * onDemand.GibHour) / 3600, FargateBilling.PerIndexSecond(small, prices)!.Value, 12);
        Assert.Equal((0.5 * spot.VcpuHour + 1 * spot.GibHour) / 3600, FargateBilling.PerIndexSecond(spotted, prices)!.Value, 12);
        Assert.True(spot.VcpuHour < onDemand.VcpuHour);
        Assert.Null(FargateBilling.PerIndexSecond(small, new BatchRunner.Core.Costs.PriceTable(new Dictionary<string, BatchRunner.Core.Costs.Price>())));
    }
}
