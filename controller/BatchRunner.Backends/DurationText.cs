using System.Globalization;

namespace BatchRunner.Backends;

/// <summary>A duration as progress lines and summaries show it: <c>m:ss</c>, or <c>h:mm:ss</c> from an hour.</summary>
public static class DurationText
{
    public static string Format(TimeSpan span) =>
        span.TotalHours >= 1
            ? span.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture)
            : span.ToString(@"m\:ss", CultureInfo.InvariantCulture);
}
