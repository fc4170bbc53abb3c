using BatchRunner.Core.Costs;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Core.Sweeps;

namespace BatchRunner.Core.Tests;

/// <summary>Prices by backend and capacity, a price file over the dated defaults, and the usage every ledger row records.</summary>
public sealed class PriceTableTests
{
    [Fact]
    public void The_defaults_price_fargate_on_demand_and_spot_and_nothing_else()
    {
        Assert.Equal(new Price(0.04048, 0.004445), PriceTable.Defaults.For("aws-batch", "on-demand"));
        Assert.Equal(0.04048 * 0.3, PriceTable.Defaults.For("aws-batch", "spot")!.VcpuHour, precision: 9);
        Assert.Null(PriceTable.Defaults.For("local", null));
        Assert.Null(PriceTable.Defaults.For("kubernetes", null));
    }

    [Fact]
    public void A_price_file_overrides_entries_and_adds_backends_keeping_the_other_defaults()
    {
        var (table, errors) = PriceTable.Read("""{"local": {"vcpuHour": 0.02, "gibHour": 0.002}, "aws-batch/spot": {"vcpuHour": 0.01, "gibHour": 0.001}}""", "prices.json");

        Assert.Empty(errors);
        Assert.Equal(new Price(0.02, 0.002), table!.For("local", null));
        Assert.Equal(new Price(0.01, 0.001), table.For("aws-batch", "spot"));
        Assert.Equal(new Price(0.04048, 0.004445), table.For("aws-batch", "on-demand"));
    }

    public static TheoryData<string, string> BadFiles => new()
    {
        { "[1]", "prices.json: expected an object of prices by backend" },
        { "{", "prices.json: not JSON:" },
        { """{"AWS Batch": {"vcpuHour": 1, "gibHour": 1}}""", "prices.json: AWS Batch: not a backend (or backend/capacity, such as aws-batch/spot)" },
        { """{"aws-batch/spot/x": {"vcpuHour": 1, "gibHour": 1}}""", "prices.json: aws-batch/spot/x: not a backend" },
        { """{"local": 0.05}""", "prices.json: local: expected {\"vcpuHour\": N, \"gibHour\": N}" },
        { """{"local": {"vcpuHour": -1, "gibHour": 0}}""", "prices.json: local.vcpuHour: a price in dollars per hour, 0 or more, got -1" },
        { """{"local": {"vcpuHour": 1}}""", "prices.json: local.gibHour: a price in dollars per hour, 0 or more, got nothing" },
        { """{"local": {"vcpuHour": 1, "gibHour": 1, "gpuHour": 3}}""", "prices.json: local.gpuHour: unknown field (vcpuHour, gibHour)" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void A_price_file_that_does_not_read_is_refused_naming_the_entry(string json, string error)
    {
        var (table, errors) = PriceTable.Read(json, "prices.json");

        Assert.Null(table);
        Assert.Contains(errors, e => e.StartsWith(error, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_ledger_row_records_the_requested_vcpu_and_gib_seconds_of_its_attempt()
    {
        var job = Specs.Valid(Specs.Yaml("  resources: {cpu: 1500m, memory: 512Mi}"));
        var start = new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);

        var row = LedgerRow.For(job, "r1", new SweepPlan(job.Spec).For(0), 1, AttemptOutcome.Succeeded, start, start.AddSeconds(10), "local");

        Assert.Equal((15.0, 5.0), (row.VcpuSeconds, row.GibSeconds));
        Assert.Null(row.BilledVcpuSeconds);
    }
}

/// <summary>Projections from a BatchJob's history, worked by hand.</summary>
public sealed class CostProjectionTests
{
    [Fact]
    public void A_run_is_projected_from_the_attempts_per_index_and_seconds_an_attempt_took()
    {
        // Earlier: 100 indexes took 120 attempts of 30 s (Fargate billed them 60 s each). Now 50 indexes, 10 at once.
        var history = new RunHistory(2, 100, 120, 30, 60);

        var local = CostProjection.Project(history, 50, 10, vcpus: 2, gib: 4, billsMinimum: false, price: null)!;
        var fargate = CostProjection.Project(history, 50, 10, vcpus: 2, gib: 4, billsMinimum: true, new Price(0.04, 0.004))!;

        Assert.Equal(1.2, local.AttemptsPerIndex);
        Assert.Equal(TimeSpan.FromSeconds(6 * 30), local.Wall);
        Assert.Equal((60 * 30 * 2 / 3600.0, 60 * 30 * 4 / 3600.0), (local.VcpuHours, local.GibHours));
        Assert.Null(local.Cost);
        Assert.Equal(60 * 60 * 2 / 3600.0, fargate.VcpuHours, precision: 9);
        Assert.Equal(2 * 0.04 + 4 * 0.004, fargate.Cost!.Value, precision: 9);
    }

    [Fact]
    public void Without_history_there_is_nothing_to_project() =>
        Assert.Null(CostProjection.Project(new RunHistory(0, 0, 0, 0, 0), 10, 2, 1, 1, false, null));
}
