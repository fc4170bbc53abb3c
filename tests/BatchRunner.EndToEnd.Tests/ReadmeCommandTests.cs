using System.Globalization;
using System.Text.Json;
using BatchRunner.Workloads.MmcQueue;
using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary>The README's first command: the M/M/c sweep on the embedded default, then its results table.</summary>
public sealed class ReadmeCommandTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public async Task The_mmc_sweep_runs_and_its_simulated_mean_waits_agree_with_erlang_c()
    {
        var run = await _cli.RunAsync("run", "manifests/examples/mmc-sweep.yaml");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("mmc-sweep run r", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("Succeeded, 72 of 72 indexes succeeded, 0 failed", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", run.Stderr, StringComparison.Ordinal);

        var query = await _cli.RunAsync(
            "query", "--format", "json",
            "SELECT servers, arrival_rate, service_rate, count(*) AS runs, avg(mean_wait) AS simulated FROM results GROUP BY ALL ORDER BY ALL");

        Assert.True(query.ExitCode == 0, query.ToString());
        var points = JsonDocument.Parse(query.Stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(24, points.Count);
        foreach (var point in points)
        {
            var servers = point.GetProperty("servers").GetInt32();
            var lambda = point.GetProperty("arrival_rate").GetDouble();
            var mu = point.GetProperty("service_rate").GetDouble();
            var simulated = point.GetProperty("simulated").GetDouble();
            var expected = ErlangC.MeanWait(lambda, mu, servers);

            // Three repeats of 100,000 customers: within 10% of Erlang C, or 0.005 time units where the wait is tiny.
            Assert.Equal(3, point.GetProperty("runs").GetInt32());
            Assert.True(
                Math.Abs(simulated - expected) <= 0.10 * expected + 0.005,
                string.Create(CultureInfo.InvariantCulture, $"c={servers} λ={lambda} μ={mu}: simulated {simulated:F4}, Erlang C {expected:F4}"));
        }
    }

    [Fact]
    public async Task Running_the_same_spec_again_runs_nothing_and_status_shows_the_run()
    {
        var spec = _cli.WriteSpec("pi.yaml", File.ReadAllText(Path.Combine(Cli.RepoRoot, "manifests/examples/pi-monte-carlo.yaml")));
        var first = await _cli.RunAsync("run", spec);
        var second = await _cli.RunAsync("run", spec);
        var status = await _cli.RunAsync("status", "pi-monte-carlo");
        var estimate = await _cli.RunAsync("query", "--format", "csv", "SELECT samples, avg(pi_estimate) AS pi, count(*) AS n FROM results GROUP BY samples ORDER BY samples");

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Contains("(0 attempts", second.Stdout, StringComparison.Ordinal);
        Assert.Contains("0 of 32 indexes to run", second.Stderr, StringComparison.Ordinal);
        Assert.Matches(@"pi-monte-carlo\s+default\s+r[0-9a-f]{11}\s+Succeeded\s+32\s+0\s+32", status.Stdout);
        var lines = estimate.Stdout.Trim().Split('\n');
        Assert.Equal("samples,pi,n", lines[0]);
        Assert.Equal(3, lines.Length);
        foreach (var line in lines.Skip(1))
        {
            var fields = line.Split(',');
            Assert.Equal("16", fields[2]);
            Assert.InRange(double.Parse(fields[1], CultureInfo.InvariantCulture), 3.13, 3.153);
        }
    }
}
