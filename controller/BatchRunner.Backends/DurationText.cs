using System.Globalization;

namespace BatchRunner.Backends;

/// <summary>A duration as progress lines and summaries show it: <c>m:ss</c>, or <c>h:mm:ss</c> from an hour.</summary>
public static class DurationText
{
    public static string Format(TimeSpan span) =>
        span.TotalHours >= 1
            ? span.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture)
            : span.ToString(@"m\:ss", CultureInfo.InvariantCulture);

    /// <summary>A duration as an estimate shows it, to its two largest units: <c>45s</c>, <c>12m</c>, <c>3h05m</c>, <c>2d04h</c>.</summary>
    public static string Short(TimeSpan span)
    {
        span = span < TimeSpan.Zero ? TimeSpan.Zero : span;
        return span.TotalMinutes < 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)Math.Ceiling(span.TotalSeconds)}s")
            : span.TotalHours < 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)Math.Ceiling(span.TotalMinutes)}m")
            : span.TotalDays < 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalHours}h{span.Minutes:00}m")
            : string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalDays}d{span.Hours:00}h");
    }
}
