using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace BatchRunner.Exec;

/// <summary>How the command ended.</summary>
/// <param name="ExitCode">Its exit code (128 + N when signal N killed it), or null when it never started.</param>
/// <param name="StartError">Why it could not start.</param>
/// <param name="Terminated">The wrapper was asked to stop (SIGTERM/SIGINT) and passed that on.</param>
public sealed record ChildResult(int? ExitCode, string? StartError, bool Terminated, string StderrTail);

/// <summary>
/// Runs the command directly (no shell: arguments reach it exactly as given), its standard output and error
/// copied both to the wrapper's own (so <c>kubectl logs</c> and CloudWatch see them) and to one log file.
/// SIGTERM and SIGINT sent to the wrapper (the container's PID 1, which Kubernetes and AWS Batch signal) are
/// passed to the command, and the wrapper waits for it to exit so its partial output is still uploaded.
/// </summary>
public static partial class ChildProcess
{
    private const int TailBytes = 4096;

    public static async Task<ChildResult> RunAsync(IReadOnlyList<string> command, IEnumerable<KeyValuePair<string, string>> environment, string logPath)
    {
        var info = new ProcessStartInfo(command[0])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in command.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            return new ChildResult(null, $"could not start \"{command[0]}\": {e.Message}", false, "");
        }

        var terminated = 0;
        void Forward(PosixSignalContext context)
        {
            // The wrapper stays up to upload; the command decides how to stop.
            context.Cancel = true;
            Interlocked.Exchange(ref terminated, 1);
            _ = Kill(process.Id, context.Signal == PosixSignal.SIGINT ? 2 : 15);
        }

        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Forward);
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Forward);
        var logLock = new object();
        FileStream? log = null;
        void Append(ReadOnlySpan<byte> bytes)
        {
            lock (logLock)
            {
                log ??= new FileStream(logPath, FileMode.Create, FileAccess.Write, FileShare.Read);
                log.Write(bytes);
            }
        }

        var stdout = CopyAsync(process.StandardOutput.BaseStream, Console.OpenStandardOutput(), Append, keepTail: false);
        var stderr = CopyAsync(process.StandardError.BaseStream, Console.OpenStandardError(), Append, keepTail: true);
        await process.WaitForExitAsync().ConfigureAwait(false);
        await stdout.ConfigureAwait(false);
        var tail = await stderr.ConfigureAwait(false);
        lock (logLock)
        {
            log?.Dispose();
        }

        return new ChildResult(process.ExitCode, null, terminated == 1, tail);
    }

    private static async Task<string> CopyAsync(Stream source, Stream echo, Action<ReadOnlySpan<byte>> append, bool keepTail)
    {
        var buffer = new byte[16 * 1024];
        var tail = new List<byte>();
        int read;
        while ((read = await source.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            await echo.WriteAsync(buffer.AsMemory(0, read)).ConfigureAwait(false);
            await echo.FlushAsync().ConfigureAwait(false);
            append(buffer.AsSpan(0, read));
            if (keepTail)
            {
                tail.AddRange(buffer.AsSpan(0, read));
                if (tail.Count > TailBytes)
                {
                    tail.RemoveRange(0, tail.Count - TailBytes);
                }
            }
        }

        return Encoding.UTF8.GetString([.. tail]);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
