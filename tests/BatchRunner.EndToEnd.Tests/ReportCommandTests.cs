using System.Text.RegularExpressions;
using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary><c>batchrunner report</c> through <c>./batchrunner</c>: a real sweep's report file, and refusals by name.</summary>
public sealed class ReportCommandTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    private async Task RunSweepAsync()
    {
        // Index 5 fails every attempt; the others write their index as v.
        var spec = _cli.WriteSpec("swept.yaml", """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: swept}
            spec:
              command:
                - /bin/sh
                - -c
                - '[ "$BATCHRUNNER_INDEX" = 5 ] && { echo broke >&2; exit 3; }; echo "{\"v\": $BATCHRUNNER_INDEX}" > "$BATCHRUNNER_OUTPUT_DIR/r.jsonl"'
              completions: 8
              parallelism: 2
              sweep: {grid: {x: [1, 2], y: [1, 2]}, repeats: 2}
              retry: {attempts: 2, backoffSeconds: 0}
            """);
        var run = await _cli.RunAsync("run", spec);
        Assert.True(run.ExitCode == 1, run.ToString());
    }

    [Fact]
    public async Task A_report_of_the_latest_run_is_one_html_file_with_its_figures_data_and_no_outside_reference()
    {
        await RunSweepAsync();
        var file = Path.Combine(_cli.Scratch, "swept.html");

        var result = await _cli.RunAsync("report", "swept", "-o", file);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Matches(@"^report: .*swept\.html \(\d+ KiB\): 8 indexes, 1 failed, 7 result rows, cost unknown \(no price for a backend\)", result.Stdout);
        var html = await File.ReadAllTextAsync(file);
        Assert.Contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';", html, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(src|href)\s*=\s*""?https?:", html);
        Assert.Contains("\"outputs\":[\"v\"]", html, StringComparison.Ordinal);
        Assert.Contains("batchrunner logs swept --run r", html, StringComparison.Ordinal);
        Assert.False(File.Exists(file + ".partial"));
        Assert.True(new FileInfo(file).Length < 700 * 1024, $"{new FileInfo(file).Length} bytes");
    }

    [Fact]
    public async Task A_report_with_prices_costs_the_run_and_the_default_file_is_named_after_the_run()
    {
        await RunSweepAsync();
        var prices = _cli.WriteSpec("prices.json", """{"local": {"vcpuHour": 0.36, "gibHour": 0}}""");

        var result = await _cli.RunAsync("report", "swept", "--prices", prices);

        Assert.True(result.ExitCode == 0, result.ToString());
        var path = Regex.Match(result.Stdout, @"^report: (\S+swept-r\w+\.html) ").Groups[1].Value;
        Assert.True(File.Exists(path), result.Stdout);
        Assert.Equal(Cli.RepoRoot, Path.GetDirectoryName(path));
        File.Delete(path);
        Assert.Matches(@"cost \$0\.0\d+", result.Stdout);
    }

    [Fact]
    public async Task What_cannot_be_reported_is_refused_by_name_with_exit_2()
    {
        await RunSweepAsync();
        var bad = _cli.WriteSpec("bad.json", """{"local": {"vcpuHour": -1, "gibHour": 0}}""");

        var unknown = await _cli.RunAsync("report", "nobody");
        var run = await _cli.RunAsync("report", "swept", "--run", "rnope");
        var name = await _cli.RunAsync("report", "../etc");
        var prices = await _cli.RunAsync("report", "swept", "--prices", bad);
        var results = await _cli.RunAsync("report", "swept", "--results", "ftp://x/y");

        Assert.All(new[] { unknown, run, name, prices, results }, r => Assert.True(r.ExitCode == 2, r.ToString()));
        Assert.Contains("nobody", unknown.Stderr, StringComparison.Ordinal);
        Assert.Contains("rnope", run.Stderr, StringComparison.Ordinal);
        Assert.StartsWith("report: ", name.Stderr, StringComparison.Ordinal);
        Assert.Contains("local.vcpuHour", prices.Stderr, StringComparison.Ordinal);
        Assert.StartsWith("report: --results: ", results.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Cli.RepoRoot, "*.html"));
    }
}
