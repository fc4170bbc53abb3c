using System.Diagnostics;
using System.Text.Json.Nodes;
using BatchRunner.Core.Runs;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// The cluster kubectl's current context points at, for <c>--cluster</c>: kubectl is the transport, so every kubeconfig
/// and auth plugin kubectl knows works, and the Native AOT CLI carries no Kubernetes client of its own.
/// </summary>
internal static class Kubectl
{
    /// <summary>The kubectl to run; <c>$BATCHRUNNER_KUBECTL</c> overrides.</summary>
    private static string Command => Environment.GetEnvironmentVariable("BATCHRUNNER_KUBECTL") is { Length: > 0 } path ? path : "kubectl";

    /// <summary>What <c>kubectl … -o json</c> printed; null (and why, on standard error) when it could not run, failed, or printed no JSON.</summary>
    public static async Task<JsonObject?> JsonAsync(string[] args, TextWriter stderr, CancellationToken cancellation)
    {
        using var process = await StartAsync(args, stderr).ConfigureAwait(false);
        if (process is null)
        {
            return null;
        }

        var output = process.StandardOutput.ReadToEndAsync(cancellation);
        var error = process.StandardError.ReadToEndAsync(cancellation);
        await process.WaitForExitAsync(cancellation).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            await stderr.WriteLineAsync($"batchrunner: kubectl {string.Join(' ', args)} failed: {TerminalText.Safe((await error.ConfigureAwait(false)).Trim())}").ConfigureAwait(false);
            return null;
        }

        try
        {
            return JsonNode.Parse(await output.ConfigureAwait(false)) as JsonObject;
        }
        catch (System.Text.Json.JsonException e)
        {
            await stderr.WriteLineAsync($"batchrunner: kubectl {string.Join(' ', args)} did not print JSON: {e.Message}").ConfigureAwait(false);
            return null;
        }
    }

    /// <summary>
    /// Runs kubectl and hands each piece of its standard output to <paramref name="write"/> as it comes (a followed log);
    /// stopped with <paramref name="cancellation"/> (Ctrl-C). True when it ran to its end; false (and why) when it failed.
    /// </summary>
    public static async Task<bool> StreamAsync(string[] args, Func<ReadOnlyMemory<byte>, Task> write, TextWriter stderr, CancellationToken cancellation)
    {
        using var process = await StartAsync(args, stderr).ConfigureAwait(false);
        if (process is null)
        {
            return false;
        }

        var error = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            var buffer = new byte[1 << 14];
            var output = process.StandardOutput.BaseStream;
            int read;
            while ((read = await output.ReadAsync(buffer, cancellation).ConfigureAwait(false)) > 0)
            {
                await write(buffer.AsMemory(0, read)).ConfigureAwait(false);
            }

            await process.WaitForExitAsync(cancellation).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        if (process.ExitCode != 0)
        {
            await stderr.WriteLineAsync($"batchrunner: kubectl {string.Join(' ', args)} failed: {TerminalText.Safe((await error.ConfigureAwait(false)).Trim())}").ConfigureAwait(false);
            return false;
        }

        return true;
    }

    private static async Task<Process?> StartAsync(string[] args, TextWriter stderr)
    {
        var start = new ProcessStartInfo(Command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        try
        {
            return Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            await stderr.WriteLineAsync($"batchrunner: --cluster runs {Command}, which could not start ({e.Message}); install kubectl or set BATCHRUNNER_KUBECTL").ConfigureAwait(false);
            return null;
        }
    }
}
