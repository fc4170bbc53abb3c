using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary>Inputs and stores that crashed the CLI with a stack trace: each now gets an answer, its own exit code, and nothing is lost.</summary>
public sealed class BrokenStoreTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    private static string Spec(string extra) => $"""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {'{'}name: broken{'}'}
        spec:
          command: ["/bin/sh", "-c", "echo '{'{'}\"v\": 1{'}'}' > $BATCHRUNNER_OUTPUT_DIR/r.jsonl"]
          completions: 2
          {extra}
        """;

    [Theory]
    [InlineData("timeoutSeconds: 99999999999999", "spec.timeoutSeconds: must be <= 2592000 (30 days), got 99999999999999")]
    [InlineData("deadlineSeconds: 1e300", "spec.deadlineSeconds: must be <= 2592000 (30 days)")]
    [InlineData("retry: {attempts: 2, backoffSeconds: 99999999999}", "spec.retry.backoffSeconds: must be <= 2592000 (30 days)")]
    [InlineData("retry: {attempts: 2, maxBackoffSeconds: 99999999999}", "spec.retry.maxBackoffSeconds: must be <= 2592000 (30 days)")]
    public async Task A_time_value_past_the_limit_is_refused_by_validate_as_by_run(string extra, string says)
    {
        var spec = _cli.WriteSpec("broken.yaml", Spec(extra));

        var validate = await _cli.RunAsync("validate", spec);
        var run = await _cli.RunAsync("run", spec);

        foreach (var result in new[] { validate, run })
        {
            Assert.Equal(2, result.ExitCode);
            Assert.Contains(says, result.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
        }

        Assert.False(Directory.Exists(Path.Combine(_cli.Store, "batchjob=broken")));
    }

    [Fact]
    public async Task A_command_that_is_not_there_is_refused_by_validate_as_by_run()
    {
        var spec = _cli.WriteSpec("missing.yaml", Spec("").Replace("/bin/sh", "/no/such/program", StringComparison.Ordinal));

        var validate = await _cli.RunAsync("validate", spec);
        var run = await _cli.RunAsync("run", spec);

        Assert.Equal((2, 2), (validate.ExitCode, run.ExitCode));
        Assert.Contains("spec.command[0]: \"/no/such/program\" was not found", validate.Stderr, StringComparison.Ordinal);
        Assert.Contains("spec.command[0]: \"/no/such/program\" was not found", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_corrupt_state_database_is_named_and_nothing_else_is_touched()
    {
        var spec = _cli.WriteSpec("broken.yaml", Spec(""));
        Assert.Equal(0, (await _cli.RunAsync("run", spec)).ExitCode);
        var state = Path.Combine(_cli.Store, "state.db");
        foreach (var sidecar in new[] { state + "-wal", state + "-shm" }.Where(File.Exists))
        {
            File.Delete(sidecar);
        }

        File.WriteAllBytes(state, Enumerable.Repeat((byte)'x', 8192).ToArray());
        var ledgers = Directory.GetFiles(_cli.Store, "ledger.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();

        foreach (var args in new[] { new[] { "status" }, ["run", spec], ["cancel", "broken"] })
        {
            var result = await _cli.RunAsync(args);
            Assert.True(result.ExitCode == 74, $"{string.Join(' ', args)}: {result}");
            Assert.Contains("the store's state database is corrupt or not a database", result.Stderr, StringComparison.Ordinal);
            Assert.Contains("Move state.db aside", result.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
        }

        Assert.Equal(8192, new FileInfo(state).Length);
        Assert.Equal(ledgers, Directory.GetFiles(_cli.Store, "ledger.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
        // The results stay readable: the query reads the files, not the state.
        var query = await _cli.RunAsync("query", "SELECT count(*) FROM results");
        Assert.Equal(0, query.ExitCode);
        Assert.Contains("2", query.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_store_path_that_is_a_file_is_named()
    {
        var file = Path.Combine(_cli.Scratch, "not-a-folder");
        await File.WriteAllTextAsync(file, "x");
        var spec = _cli.WriteSpec("broken.yaml", Spec(""));

        var result = await _cli.RunAsync("run", "--store", file, spec);

        Assert.Equal(74, result.ExitCode);
        Assert.Contains($"the store {file} is a file, not a folder", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("x", await File.ReadAllTextAsync(file));
    }

    [Fact]
    public async Task A_store_that_fills_up_is_named_and_exits_74()
    {
        // A file-size limit stands in for a full disk: writes past it fail with EFBIG as they would with ENOSPC.
        var spec = _cli.WriteSpec("big.yaml", Spec("").Replace("echo '{\\\"v\\\": 1}' > $BATCHRUNNER_OUTPUT_DIR/r.jsonl", "true", StringComparison.Ordinal)
            .Replace("completions: 2", "completions: 20000", StringComparison.Ordinal));
        var start = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", $"trap '' XFSZ; ulimit -f 64 && exec \"{Path.Combine(Cli.RepoRoot, "batchrunner")}\" run \"$0\"", spec])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.Environment["BATCHRUNNER_STORE"] = _cli.Store;
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();

        Assert.True(process.ExitCode == 74, $"exit {process.ExitCode}: {await stderr}");
        Assert.Contains("could not be written", await stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", await stderr, StringComparison.Ordinal);
    }
}
