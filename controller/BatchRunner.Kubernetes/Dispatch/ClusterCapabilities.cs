using System.Globalization;
using System.Text.RegularExpressions;

namespace BatchRunner.Kubernetes.Dispatch;

/// <summary>
/// What the API server's Job controller supports, from its version. Fields a server does not know are dropped
/// silently, so the controller decides up front what it can promise and says what degrades.
/// </summary>
public sealed partial record ClusterCapabilities(int Major, int Minor)
{
    /// <summary>A current cluster: what the unit tests assume unless they say otherwise.</summary>
    public static readonly ClusterCapabilities Current = new(1, 31);

    /// <summary><c>completionMode: Indexed</c> (1.21; GA in 1.24).</summary>
    public bool IndexedJobs => AtLeast(1, 21);

    /// <summary><c>backoffLimitPerIndex</c> (1.28 alpha, on by default from 1.29).</summary>
    public bool BackoffLimitPerIndex => AtLeast(1, 29);

    /// <summary><c>status.failedIndexes</c> comes with backoffLimitPerIndex.</summary>
    public bool FailedIndexesInStatus => BackoffLimitPerIndex;

    public string Version => string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}");

    public static ClusterCapabilities FromVersion(string major, string minor) =>
        new(ParseLeadingNumber(major), ParseLeadingNumber(minor));

    private bool AtLeast(int major, int minor) => Major > major || (Major == major && Minor >= minor);

    // Managed clusters report minors such as "29+".
    private static int ParseLeadingNumber(string text) =>
        LeadingDigits().Match(text) is { Success: true } match ? int.Parse(match.Value, CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex("^[0-9]+")]
    private static partial Regex LeadingDigits();
}
