using System.Diagnostics;

namespace BatchRunner.Results.Tests.Support;

/// <summary>
/// <c>./batchrunner</c> of the checkout (the native CLI, as users run it; the JIT build where no linker is) run as a
/// process, with an environment of the test's choosing. Self-contained, so the AWS and Athena tests link it too:
/// under Native AOT, reflection fails only at run time, so only the binary run this way proves a command works.
/// </summary>
public static class CliProcess
{
    /// <summary>A first call may publish the native CLI (about a minute, longer on a busy machine).</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    /// <summary>What a finished command returned and printed; its text is an assertion message that shows all of it.</summary>
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Command { get; } = Path.Combine(RepoRoot, "batchrunner");

    public static async Task<Result> RunAsync(IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(Command) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // Nothing of the test process's own store or AWS endpoints leaks in: each test names what it means.
        foreach (var name in new[] { "BATCHRUNNER_STORE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_BATCH", "AWS_ENDPOINT_URL_ATHENA", "AWS_ENDPOINT_URL_S3" })
        {
            info.Environment.Remove(name);
        }

        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{Command} did not start");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{Command} {string.Join(' ', info.ArgumentList)} did not finish within {Timeout}\n--- stdout\n{await stdout}\n--- stderr\n{await stderr}");
        }

        return new Result(process.ExitCode, await stdout, await stderr);
    }

    private static string FindRepoRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "BatchRunner.sln")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException("BatchRunner.sln not found above " + AppContext.BaseDirectory);
    }
}
