using System.Text.Json.Serialization;

namespace BatchRunner.Reports;

/// <summary>
/// Everything a sweep's report shows, already aggregated (by <see cref="SweepReportBuilder"/>): its size is bounded by
/// the limits in <see cref="ReportLimits"/>, never by the number of indexes or result rows. The page draws it as it is.
/// </summary>
public sealed record SweepReport
{
    public required string BatchJob { get; init; }
    public required string Namespace { get; init; }
    public required string Run { get; init; }
    public required string Store { get; init; }
    public required string GeneratedAt { get; init; }
    public required ReportSummary Summary { get; init; }
    /// <summary>The parameters that take more than one value in the run, in the spec's column order.</summary>
    public required IReadOnlyList<ReportParameter> Parameters { get; init; }
    /// <summary>The numeric columns the workload wrote (the ones plotted).</summary>
    public required IReadOnlyList<string> Outputs { get; init; }
    public required IReadOnlyList<OutputEffect> Effects { get; init; }
    public required IReadOnlyList<OutputHeatmap> Heatmaps { get; init; }
    public required IReadOnlyList<FailureRate> FailureRates { get; init; }
    public required DurationHistogram Durations { get; init; }
    public required RunTimeline Timeline { get; init; }
    public required CostSummary Cost { get; init; }
    public required FailedIndexes Failed { get; init; }
    /// <summary>What the report leaves out or cannot show, in words (a limit reached, no price for a backend, …).</summary>
    public required IReadOnlyList<string> Notes { get; init; }
}

public sealed record ReportSummary(
    long Indexes, long Succeeded, long Failed, long Attempts, long Retries, long Reused,
    double? FirstStarted, double? LastFinished, double AttemptSeconds, long MalformedLines, long EmptyOutputs, long ResultRows);

/// <param name="Numeric">The values are numbers (the page puts them on a value axis), else labels.</param>
public sealed record ReportParameter(string Name, bool Numeric, long Values);

/// <summary>An output against one parameter: at each value, the mean over the indexes there and its 95% interval.</summary>
/// <param name="Binned">The parameter had too many values to show each: values are grouped in equal bins, X their middle.</param>
public sealed record OutputEffect(string Output, string Parameter, bool Binned, IReadOnlyList<EffectPoint> Points);

/// <param name="Low">Mean − 1.96 standard errors (normal approximation); null with one index.</param>
public sealed record EffectPoint(string X, long N, double Mean, double? Low, double? High);

/// <summary>An output's mean over two parameters.</summary>
public sealed record OutputHeatmap(string Output, string X, string Y, IReadOnlyList<string> Xs, IReadOnlyList<string> Ys, IReadOnlyList<HeatCell> Cells);

public sealed record HeatCell(int X, int Y, double Mean, long N);

/// <summary>Indexes and failed indexes (out of attempts, never succeeded) at each value of one parameter.</summary>
public sealed record FailureRate(string Parameter, bool Binned, IReadOnlyList<FailurePoint> Points);

public sealed record FailurePoint(string X, long Indexes, long Failed);

/// <summary>Attempts' durations in equal bins from <paramref name="Low"/>, counted by outcome.</summary>
public sealed record DurationHistogram(double Low, double Width, IReadOnlyList<DurationBin> Bins);

public sealed record DurationBin(int Bin, long Succeeded, long Failed, long Other);

/// <summary>Attempts running over time by backend, in buckets from <paramref name="Start"/> (epoch seconds).</summary>
/// <param name="Running">Per backend, in each bucket where an attempt started or ended: the most attempts running at once in it, and how many ran at its end.</param>
/// <param name="Retries">Attempts after an index's first started in each bucket.</param>
public sealed record RunTimeline(double Start, double BucketSeconds, int Buckets, IReadOnlyList<BackendRunning> Running, IReadOnlyList<BucketCount> Retries);

public sealed record BackendRunning(string Backend, IReadOnlyList<RunningPoint> Points);

public sealed record RunningPoint(int Bucket, long Most, long Last);

public sealed record BucketCount(int Bucket, long Count);

/// <param name="Total">Null when some attempt ran on a backend without a price.</param>
public sealed record CostSummary(double? Total, double VcpuHours, double GibHours, string Prices, IReadOnlyList<CostGroup> ByBackend, IReadOnlyList<CostGroup> ByPoint, long Points);

public sealed record CostGroup(string Label, long Attempts, double VcpuHours, double? Cost);

/// <summary>Indexes that never succeeded: the first <see cref="ReportLimits.FailedRows"/> by index, and how many in all.</summary>
public sealed record FailedIndexes(long Total, IReadOnlyList<FailedIndex> Rows);

/// <param name="Logs">Where the last attempt's logs are: a file:// link (local store), an s3:// location, or null.</param>
/// <param name="Command">The command that prints them.</param>
public sealed record FailedIndex(long Index, string Parameters, long Attempts, string Status, long? ExitCode, string? Reason, string? Logs, string Command);

/// <summary>How much of a sweep a report shows, so that its size stays small whatever the sweep's.</summary>
public static class ReportLimits
{
    public const int Outputs = 12;
    public const int Parameters = 8;
    public const int ParameterValues = 60;
    public const int Heatmaps = 6;
    public const int HeatmapValues = 40;
    public const int DurationBins = 30;
    public const int TimelineBuckets = 300;
    public const int CostPoints = 50;
    public const int FailedRows = 500;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(SweepReport))]
public sealed partial class ReportJsonContext : JsonSerializerContext;
