using System.Globalization;
using System.Text.RegularExpressions;

namespace BatchRunner.Core.Spec;

/// <summary>
/// The subset of Kubernetes resource quantities a BatchJob uses: CPU as cores or millicores (<c>2</c>, <c>500m</c>),
/// memory as bytes with a decimal or binary suffix (<c>512Mi</c>, <c>4Gi</c>, <c>1G</c>).
/// </summary>
public static partial class Quantity
{
    private static readonly Dictionary<string, double> MemoryMultipliers = new(StringComparer.Ordinal)
    {
        [""] = 1,
        ["k"] = 1e3, ["M"] = 1e6, ["G"] = 1e9, ["T"] = 1e12, ["P"] = 1e15,
        ["Ki"] = 1L << 10, ["Mi"] = 1L << 20, ["Gi"] = 1L << 30, ["Ti"] = 1L << 40, ["Pi"] = 1L << 50,
    };

    public static bool TryParseMilliCpu(string text, out long milliCpu, out string error)
    {
        milliCpu = 0;
        var match = QuantityPattern().Match(text);
        if (!match.Success || match.Groups["suffix"].Value is not ("" or "m"))
        {
            error = $"must be cores or millicores such as \"2\", \"0.5\" or \"500m\", got \"{text}\"";
            return false;
        }

        var number = double.Parse(match.Groups["number"].Value, CultureInfo.InvariantCulture);
        var value = match.Groups["suffix"].Value == "m" ? number : number * 1000;
        if (value < 1 || value > 1_000_000)
        {
            error = $"must be between 1m and 1000 cores, got \"{text}\"";
            return false;
        }

        milliCpu = (long)Math.Ceiling(value);
        error = "";
        return true;
    }

    public static bool TryParseBytes(string text, out long bytes, out string error)
    {
        bytes = 0;
        var match = QuantityPattern().Match(text);
        if (match.Success && match.Groups["suffix"].Value == "m")
        {
            error = $"\"{text}\" is millibytes; did you mean \"{match.Groups["number"].Value}Mi\"?";
            return false;
        }

        if (!match.Success || !MemoryMultipliers.TryGetValue(match.Groups["suffix"].Value, out var multiplier))
        {
            error = $"must be bytes with an optional suffix (Ki, Mi, Gi, Ti, k, M, G, T) such as \"512Mi\", got \"{text}\"";
            return false;
        }

        var value = double.Parse(match.Groups["number"].Value, CultureInfo.InvariantCulture) * multiplier;
        if (value < 1 << 20 || value > 1L << 50)
        {
            error = $"must be between 1Mi and 1Pi, got \"{text}\"";
            return false;
        }

        bytes = (long)Math.Ceiling(value);
        error = "";
        return true;
    }

    [GeneratedRegex(@"^(?<number>[0-9]+(\.[0-9]+)?)(?<suffix>[a-zA-Z]*)$")]
    private static partial Regex QuantityPattern();
}
