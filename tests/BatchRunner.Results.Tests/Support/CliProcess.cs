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
        using var running = Start(arguments, environment);
        return await running.WaitAsync();
    }

    /// <summary>Starts the command and leaves it running, for a test that stops it as Ctrl-C does.</summary>
    public static Running Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment)
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

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{Command} did not start");
        process.StandardInput.Close();
        return new Running(process, $"{Command} {string.Join(' ', info.ArgumentList)}");
    }

    /// <summary>A started command; disposing it kills it if it still runs.</summary>
    public sealed class Running : IDisposable
    {
        private readonly Process _process;
        private readonly string _description;
        private readonly Task<string> _stdout;
        private readonly Task<string> _stderr;

        internal Running(Process process, string description)
        {
            _process = process;
            _description = description;
            _stdout = process.StandardOutput.ReadToEndAsync();
            _stderr = process.StandardError.ReadToEndAsync();
        }

        /// <summary>
        /// Polls until <paramref name="condition"/> holds (say, the server saw the command's first request), so a
        /// signal lands on the CLI itself rather than on ./batchrunner still building it.
        /// </summary>
        public async Task WaitUntilAsync(Func<bool> condition, string what)
        {
            var deadline = DateTime.UtcNow + Timeout;
            while (!condition())
            {
                if (_process.HasExited)
                {
                    throw new InvalidOperationException($"{_description} ended before {what}\n{await WaitAsync()}");
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"{_description}: not within {Timeout}: {what}");
                }

                await Task.Delay(20);
            }
        }

        /// <summary>
        /// SIGTERM, which the CLI handles as it handles Ctrl-C (both cancel the command's token). Not SIGINT itself:
        /// a process started from a background job of a non-interactive shell inherits SIGINT ignored, as POSIX
        /// says, so SIGINT would test how the tests were launched rather than the CLI. ./batchrunner execs the CLI,
        /// so the process is the CLI's own.
        /// </summary>
        public void Terminate()
        {
            using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])
                ?? throw new InvalidOperationException("kill did not start");
            kill.WaitForExit();
        }

        public async Task<Result> WaitAsync()
        {
            using var timeout = new CancellationTokenSource(Timeout);
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
                throw new TimeoutException($"{_description} did not finish within {Timeout}\n--- stdout\n{await _stdout}\n--- stderr\n{await _stderr}");
            }

            return new Result(_process.ExitCode, await _stdout, await _stderr);
        }

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            _process.Dispose();
        }
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
