using System.Globalization;
using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary><c>batchrunner cost</c> through <c>./batchrunner</c> over the local store: usage from the ledger, a price file, refusals.</summary>
public sealed class CostCommandTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    private async Task<string> RunAsync()
    {
        var spec = _cli.WriteSpec("costly.yaml", """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: costly}
            spec:
              command: ["/bin/sh", "-c", "sleep 0.1"]
              completions: 3
              parallelism: 3
              resources: {cpu: "2", memory: 512Mi}
            """);
        Assert.Equal(0, (await _cli.RunAsync("run", spec)).ExitCode);
        return (await _cli.RunAsync("query", "SELECT sum(duration_seconds) AS s FROM indexes", "--format", "csv")).Stdout.Split('\n')[1];
    }

    [Fact]
    public async Task Usage_is_the_requested_vcpus_and_memory_over_each_attempts_time_at_the_prices_given()
    {
        var seconds = double.Parse(await RunAsync(), CultureInfo.InvariantCulture);
        var prices = _cli.WriteSpec("prices.json", """{"local": {"vcpuHour": 0.36, "gibHour": 0.72}}""");

        var cost = await _cli.RunAsync("cost", "costly", "--prices", prices);
        var byPoint = await _cli.RunAsync("cost", "costly", "--prices", prices, "--by", "point");

        Assert.True(cost.ExitCode == 0, cost.ToString());
        // 2 vCPU and 0.5 GiB over every attempt's seconds: $0.36 × 2 + $0.72 × 0.5 an hour = $0.0003 a second.
        var expected = seconds * 0.0003;
        var total = System.Text.RegularExpressions.Regex.Match(cost.Stdout, @"total: ([\d.]+) vCPU-hours, \$([\d.]+)");
        Assert.True(total.Success, cost.Stdout);
        // Within what the printed digits carry: rounding both sides to 5 places failed once when the figure sat on a boundary
        // (0.00022509 → 0.00023 against a printed 0.000225 → 0.00022).
        Assert.Equal(seconds * 2 / 3600, double.Parse(total.Groups[1].Value, CultureInfo.InvariantCulture), tolerance: 1e-5);
        Assert.Equal(expected, double.Parse(total.Groups[2].Value, CultureInfo.InvariantCulture), tolerance: 1e-5);
        Assert.Equal(1 + 3, byPoint.Stdout.Split('\n').Count(l => l.StartsWith("r", StringComparison.Ordinal) || l.StartsWith("RUN", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_backend_without_a_price_shows_its_usage_and_no_cost_and_bad_input_is_refused_by_name()
    {
        await RunAsync();
        var bad = _cli.WriteSpec("bad.json", """{"local": {"vcpuHour": "cheap", "gibHour": 0}}""");

        var unpriced = await _cli.RunAsync("cost", "costly");
        var refused = await _cli.RunAsync("cost", "costly", "--prices", bad);
        var unknown = await _cli.RunAsync("cost", "nobody");
        var grouping = await _cli.RunAsync("cost", "costly", "--by", "tenant");

        Assert.Equal(0, unpriced.ExitCode);
        Assert.Matches(@"(?m)^r\w+\s+local\s+3\s+[\d.]+\s+[\d.]+\s+-$", unpriced.Stdout);
        Assert.Contains("no cost where a backend has no price (give one with --prices FILE)", unpriced.Stdout, StringComparison.Ordinal);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("bad.json: local.vcpuHour: a price in dollars per hour, 0 or more, got \"cheap\"", refused.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("cost: no attempt of nobody in namespace default", unknown.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, grouping.ExitCode);
    }

    private string Budgeted(double usd) => _cli.WriteSpec($"budgeted-{usd}.yaml", $$"""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: budgeted}
        spec:
          command: ["/bin/sh", "-c", "sleep 0.2"]
          completions: 20
          parallelism: 2
          resources: {cpu: "1", memory: 1Gi}
          budget: {usd: {{usd}}}
        """);

    [Fact]
    public async Task A_budget_stops_starting_indexes_once_the_projected_cost_would_pass_it_and_a_larger_one_resumes_the_rest()
    {
        // A dollar a vCPU-second: an index of ~0.2 s costs ~$0.20, so $2 covers about ten of twenty.
        var prices = _cli.WriteSpec("prices.json", """{"local": {"vcpuHour": 3600, "gibHour": 0}}""");

        var capped = await _cli.RunAsync("run", Budgeted(2), "--prices", prices);
        var resumed = await _cli.RunAsync("run", Budgeted(100), "--prices", prices);

        Assert.True(capped.ExitCode == 1, capped.ToString());
        var counts = System.Text.RegularExpressions.Regex.Match(capped.Stdout, @"budgeted run r\w+: Failed, (\d+) of 20 indexes succeeded, 0 failed");
        Assert.True(counts.Success, capped.ToString());
        // The first two run before any cost is known; the cap then follows each second's look (see README).
        Assert.InRange(int.Parse(counts.Groups[1].Value, CultureInfo.InvariantCulture), 6, 14);
        Assert.Matches(@"reason: projected \$[\d.]+ for 20 indexes at \$[\d.]+ an index \([\d.]+ s typical at \$3600\.00 an hour\) would pass the budget of \$2\.00: it covers \d+", capped.Stdout);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("20 of 20 indexes succeeded", resumed.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_budget_on_a_backend_without_a_price_is_refused_before_anything_runs()
    {
        var refused = await _cli.RunAsync("run", Budgeted(2));

        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("budgeted: spec.budget: the backend local has no price", refused.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("budgeted", (await _cli.RunAsync("list")).Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_estimate_projects_time_and_cost_from_earlier_runs_or_says_it_has_nothing_to_go_on()
    {
        var spec = _cli.WriteSpec("fresh.yaml", """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: costly}
            spec:
              command: ["/bin/sh", "-c", "sleep 0.1"]
              completions: 30
              parallelism: 3
              resources: {cpu: "2", memory: 512Mi}
            """);
        var before = await _cli.RunAsync("validate", spec, "--estimate");
        await RunAsync();
        var prices = _cli.WriteSpec("prices.json", """{"local": {"vcpuHour": 0.36, "gibHour": 0.72}}""");

        var after = await _cli.RunAsync("validate", spec, "--estimate", "--prices", prices);

        Assert.Equal(0, before.ExitCode);
        Assert.Contains("estimate: nothing to go on: no earlier attempt of costly in namespace default", before.Stdout, StringComparison.Ordinal);
        Assert.True(after.ExitCode == 0, after.ToString());
        Assert.Matches(@"estimate from 3 attempt\(s\) over 3 index\(es\) in 1 earlier run\(s\): 1 attempt\(s\) per index, [\d.]+ s each; this run: 30 indexes at parallelism 3, about [\d:]+, [\d.]+ vCPU-hours, [\d.]+ GiB-hours, \$[\d.]+ \(local\)", after.Stdout);
    }
}
