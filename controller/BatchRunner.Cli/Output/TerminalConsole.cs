using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Display;

namespace BatchRunner.Cli.Output;

/// <summary>
/// One place that owns the terminal line: log lines and the live progress line take turns, so a warning never
/// lands in the middle of the progress bar.
/// </summary>
public static class TerminalConsole
{
    public static readonly Lock Gate = new();

    /// <summary>True when the writer is the real stderr and that is a terminal (no live display into a file or pipe).</summary>
    public static bool IsInteractive(TextWriter writer) =>
        ReferenceEquals(writer, Console.Error) && !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") != "dumb";

    /// <summary>Erases the current line: the progress line is redrawn on its next tick.</summary>
    public const string ClearLine = "\r\u001b[K";
}

/// <summary>
/// A Serilog sink for the CLI's stderr. On an interactive terminal it clears the progress line before each log
/// line and shows warnings only (the live line says the rest); elsewhere it writes timestamped plain lines.
/// </summary>
public sealed class StderrSink(TextWriter writer, bool interactive, LogEventLevel minimum) : ILogEventSink
{
    private readonly MessageTemplateTextFormatter _formatter = new(
        interactive ? "{Level:u3} {Message:lj}{NewLine}{Exception}" : "{Timestamp:HH:mm:ss} {Level:u3} {Message:lj}{NewLine}{Exception}");

    public void Emit(LogEvent logEvent)
    {
        if (logEvent.Level < minimum)
        {
            return;
        }

        lock (TerminalConsole.Gate)
        {
            if (interactive)
            {
                writer.Write(TerminalConsole.ClearLine);
            }

            // Log lines carry workload text (a failed attempt's last stderr line): on a terminal, or later in a file, it must not act.
            using var line = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
            _formatter.Format(logEvent, line);
            writer.Write(BatchRunner.Core.Runs.TerminalText.Safe(line.ToString()));
            writer.Flush();
        }
    }
}
