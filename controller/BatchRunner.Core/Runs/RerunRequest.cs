using System.Globalization;

namespace BatchRunner.Core.Runs;

/// <summary>
/// A rerun asked in words, as the <c>batchrunner.io/rerun</c> annotation (or a queue message) carries it:
/// <c>failed</c> or index ranges (<c>3,7-9</c>), optionally followed by <c>@</c> and anything that makes a request
/// differ from the last one (<c>failed@2026-12-05T10:00</c>), so the same choice can be asked again.
/// </summary>
public static class RerunRequest
{
    public const string Failed = "failed";

    /// <summary>The annotation a BatchJob carries a rerun request in, through kubectl and through the queue.</summary>
    public const string Annotation = "batchrunner.io/rerun";

    /// <summary>
    /// The request a message carries, made its own: a value without a tag gets the message's id, so each message is one
    /// request and its redeliveries are the same one.
    /// </summary>
    public static string Tagged(string request, string messageId) => request.Contains('@', StringComparison.Ordinal) ? request : $"{request}@{messageId}";

    /// <summary>The indexes the request chooses in a run of <paramref name="total"/> whose failed indexes are <paramref name="failedIndexes"/>, or why none.</summary>
    public static IReadOnlyList<int>? Resolve(string request, int total, string? failedIndexes, out string? error)
    {
        var what = request.Split('@', 2)[0].Trim();
        if (what.Length == 0)
        {
            error = $"\"{request}\" names no indexes: write failed, or indexes such as 3,7-9";
            return null;
        }

        if (what.Equals(Failed, StringComparison.OrdinalIgnoreCase))
        {
            var failed = IndexRanges.Parse(failedIndexes);
            error = failed.Count == 0 ? "the run has no failed indexes" : null;
            return failed.Count == 0 ? null : failed;
        }

        var chosen = IndexRanges.ParseWithin(what, total, out error);
        if (chosen is null && what.Any(c => !char.IsAsciiDigit(c) && c is not (',' or '-' or ' ')))
        {
            error = string.Create(CultureInfo.InvariantCulture, $"\"{what}\" is neither failed nor indexes such as 3,7-9");
        }

        return chosen;
    }
}
