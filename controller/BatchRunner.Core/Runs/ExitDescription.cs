using System.Globalization;

namespace BatchRunner.Core.Runs;

/// <summary>How an attempt's process ended, in words: the local backend and the results wrapper say it alike.</summary>
public static class ExitDescription
{
    /// <summary>Describes an exit the way a person debugging it wants to read it.</summary>
    public static string Describe(int exitCode, string stderrTail, int? signal = null)
    {
        var text = signal is { } s
            ? string.Create(CultureInfo.InvariantCulture, $"exit code {exitCode} (killed by signal {s}{SignalName(s)})")
            : exitCode > 128 && exitCode < 128 + 65
                ? string.Create(CultureInfo.InvariantCulture, $"exit code {exitCode} (killed by signal {exitCode - 128})")
                : string.Create(CultureInfo.InvariantCulture, $"exit code {exitCode}");
        var lastLine = stderrTail.TrimEnd().Split('\n').LastOrDefault()?.Trim();
        return string.IsNullOrEmpty(lastLine) ? text : $"{text}: {lastLine}";
    }

    private static string SignalName(int signal) => signal switch
    {
        1 => ", SIGHUP",
        2 => ", SIGINT",
        3 => ", SIGQUIT",
        4 => ", SIGILL",
        6 => ", SIGABRT",
        7 => ", SIGBUS",
        8 => ", SIGFPE",
        9 => ", SIGKILL",
        11 => ", SIGSEGV",
        13 => ", SIGPIPE",
        14 => ", SIGALRM",
        15 => ", SIGTERM",
        _ => "",
    };
}
