using System.Diagnostics;

namespace BatchRunner.Results.Tests.Support;

/// <summary>
/// <c>./batchrunner</c> of the checkout (the native CLI, as users run it; the JIT build where no linker is) run as a
/// process, with an environment of the test's choosing.
/// </summary>
public static class CliProcess
{
    public static string Command { get; } = Path.Combine(S3Server.RepoRoot, "batchrunner");

    public static async Task<Wrapper.Result> RunAsync(IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(Command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment.Remove("BATCHRUNNER_STORE");
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{Command} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        return new Wrapper.Result(process.ExitCode, await stdout, await stderr);
    }
}
