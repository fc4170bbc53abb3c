using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace BatchRunner.Local.Execution;

/// <summary>
/// The portable launcher, on .NET's <see cref="Process"/>: used where posix_spawn is not available. Standard output and
/// error pass through pipes into the log files, which are created only when the process writes.
/// </summary>
public sealed class DotNetProcessLauncher : IProcessLauncher
{
    public static readonly DotNetProcessLauncher Instance = new();

    public ICommandLauncher Prepare(IReadOnlyList<string> argv, string workingDirectory, TimeProvider time) => new Command(argv, workingDirectory, time);

    private sealed class Command(IReadOnlyList<string> argv, string workingDirectory, TimeProvider time) : ICommandLauncher
    {
        public Task<ProcessResult> RunAsync(AttemptLaunch attempt, CancellationToken cancellation) =>
            DotNetProcessLauncher.RunAsync(argv, attempt.Environment, workingDirectory, attempt.LogsFolder, attempt.Timeout, time, attempt.Started, cancellation);

        public void Dispose()
        {
        }
    }

    private static async Task<ProcessResult> RunAsync(
        IReadOnlyList<string> argv,
        IReadOnlyList<KeyValuePair<string, string>> environment,
        string workingDirectory,
        string logsFolder,
        TimeSpan? timeout,
        TimeProvider time,
        Action<int> started,
        CancellationToken cancellation)
    {
        // A program path with a slash resolves against the working directory, as LocalExecutor checks it; .NET would
        // resolve it against the runner's own.
        var program = argv[0].Contains('/', StringComparison.Ordinal) ? Path.GetFullPath(argv[0], workingDirectory) : argv[0];
        var startInfo = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        for (var i = 1; i < argv.Count; i++)
        {
            startInfo.ArgumentList.Add(argv[i]);
        }

        foreach (var (name, value) in environment)
        {
            startInfo.Environment[name] = value;
        }

        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            return new ProcessResult(null, StartFailed: true, false, false, $"cannot start \"{argv[0]}\": {e.Message}", "");
        }

        // A batch workload reads no input; an immediately closed stdin makes one that tries see end-of-file, not hang.
        process.StandardInput.Close();
        started(process.Id);

        var stdout = CaptureAsync(process.StandardOutput.BaseStream, Path.Combine(logsFolder, ProcessLauncher.StdoutFile), tailBytes: 0);
        var stderr = CaptureAsync(process.StandardError.BaseStream, Path.Combine(logsFolder, ProcessLauncher.StderrFile), ProcessLauncher.StderrTailBytes);

        using var timeoutSource = timeout is { } limit ? new CancellationTokenSource(limit, time) : new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeoutSource.Token, cancellation);
        var timedOut = false;
        var interrupted = false;
        try
        {
            await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            timedOut = timeoutSource.IsCancellationRequested && !cancellation.IsCancellationRequested;
            interrupted = !timedOut;
            ProcessLauncher.KillTree(process);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }

        await stdout.ConfigureAwait(false);
        var tail = await stderr.ConfigureAwait(false);
        return new ProcessResult(process.ExitCode, false, timedOut, interrupted, null, tail);
    }

    private static async Task<string> CaptureAsync(Stream source, string path, int tailBytes)
    {
        var buffer = new byte[16 * 1024];
        FileStream? file = null;
        var tail = tailBytes > 0 ? new byte[tailBytes] : [];
        var tailLength = 0;
        try
        {
            int read;
            while ((read = await source.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            {
                if (file is null)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1, useAsync: true);
                }

                await file.WriteAsync(buffer.AsMemory(0, read)).ConfigureAwait(false);
                tailLength = AppendTail(tail, tailLength, buffer.AsSpan(0, read));
            }
        }
        finally
        {
            if (file is not null)
            {
                await file.DisposeAsync().ConfigureAwait(false);
            }
        }

        return Encoding.UTF8.GetString(tail, 0, tailLength);
    }

    private static int AppendTail(byte[] tail, int length, ReadOnlySpan<byte> chunk)
    {
        if (tail.Length == 0)
        {
            return 0;
        }

        if (chunk.Length >= tail.Length)
        {
            chunk[^tail.Length..].CopyTo(tail);
            return tail.Length;
        }

        var keep = Math.Min(length, tail.Length - chunk.Length);
        tail.AsSpan(length - keep, keep).CopyTo(tail);
        chunk.CopyTo(tail.AsSpan(keep));
        return keep + chunk.Length;
    }
}
