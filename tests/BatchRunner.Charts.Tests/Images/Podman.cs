using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text;

// These tests run where podman, the control plane and fauxqs run: Linux.
[assembly: SupportedOSPlatform("linux")]

namespace BatchRunner.Charts.Tests.Images;

/// <summary>What one run of a program gave.</summary>
internal sealed record ProgramResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Tail(Output)}\n--- stderr ---\n{Tail(Error)}";

    private static string Tail(string text) => text.Length <= 4000 ? text : "…" + text[^4000..];
}

/// <summary>
/// Debian's podman, with the settings and stand-in base images tests/images/build-base-images.sh makes (once per
/// machine; a later call returns at once).
/// </summary>
internal static class Podman
{
    private static readonly Lazy<string> Configuration = new(() =>
    {
        var result = Programs.Run(Path.Combine(Helm.RepoRoot, "tests", "images", "build-base-images.sh"), [], TimeSpan.FromMinutes(20));
        Assert.True(result.ExitCode == 0, $"tests/images/build-base-images.sh failed: {result}");
        return result.Output.Trim();
    });

    /// <summary>podman's settings for this machine (its <c>CONTAINERS_CONF</c>).</summary>
    public static string ContainersConf => Configuration.Value;

    public static Task<ProgramResult> RunAsync(params string[] args) => RunAsync(args, TimeSpan.FromMinutes(5));

    public static Task<ProgramResult> RunAsync(IReadOnlyList<string> args, TimeSpan timeout) =>
        Task.Run(() => Programs.Run("podman", args, timeout, new Dictionary<string, string> { ["CONTAINERS_CONF"] = ContainersConf }));
}

/// <summary>The programs the image tests drive (podman, scripts, ip, ctr), each run to its end.</summary>
internal static class Programs
{
    /// <summary>Runs a program to its end (killed after <paramref name="timeout"/>), its output kept.</summary>
    public static ProgramResult Run(string program, IReadOnlyList<string> args, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start)!;
        var (output, error) = (new StringBuilder(), new StringBuilder());
        process.OutputDataReceived += (_, line) => Append(output, line.Data);
        process.ErrorDataReceived += (_, line) => Append(error, line.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return new ProgramResult(-1, Text(output), $"{program} {string.Join(' ', args)}: killed after {timeout}\n{Text(error)}");
        }

        process.WaitForExit();
        return new ProgramResult(process.ExitCode, Text(output), Text(error));
    }

    private static void Append(StringBuilder text, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (text)
        {
            text.AppendLine(line);
        }
    }

    private static string Text(StringBuilder text)
    {
        lock (text)
        {
            return text.ToString();
        }
    }
}
