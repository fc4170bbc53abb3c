using System.Globalization;
using System.Text;

namespace BatchRunner.Core.Runs;

/// <summary>
/// Text a workload wrote (its stderr's last line in a reason, its output's values), made safe to show on a
/// terminal: every control character but newline and tab (C0, DEL, C1 — ESC and CSI start the sequences that move the
/// cursor, recolour, retitle the window or write to the clipboard) is shown as its escape, <c>\x1b</c>, and so no
/// longer acts.
/// </summary>
public static class TerminalText
{
    public static string Safe(string text)
    {
        var first = text.AsSpan().IndexOfAnyInRange('\0', '\u001f');
        if (first < 0 && text.AsSpan().IndexOfAnyInRange('\u007f', '\u009f') < 0)
        {
            return text;
        }

        var safe = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (c is '\n' or '\t' || !char.IsControl(c))
            {
                safe.Append(c);
            }
            else
            {
                safe.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            }
        }

        return safe.ToString();
    }
}
