using System.Text;
using System.Text.Json;
using BatchRunner.Core.Costs;
using BatchRunner.Core.Store;
using BatchRunner.Local.Query;
using BatchRunner.Reports;

namespace BatchRunner.Reports.Tests.Support;

/// <summary>
/// A store in a temporary folder written attempt by attempt in the layout every backend writes (ledger row, output
/// lines), so that a test states exactly what a sweep did and what its report must then say.
/// </summary>
public sealed class SweepStore : IDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    public SweepStore(string batchJob = "sweep", string run = "r1")
    {
        (BatchJob, Run) = (batchJob, run);
    }

    public string Root { get; } = Directory.CreateTempSubdirectory("batchrunner-report-").FullName;

    public string BatchJob { get; }

    public string Run { get; }

    /// <summary>Writes one attempt: its ledger row and, when given, its output lines (results.jsonl).</summary>
    public void Attempt(
        int index, object parameters, string status = "succeeded", int attempt = 1, double startSeconds = 0, double seconds = 1,
        string backend = "local", string? reason = null, int? exitCode = null, IEnumerable<object>? rows = null, string? reusedFrom = null,
        double? vcpuSeconds = null, double? gibSeconds = null, string? capacity = null, int seed = 0)
    {
        var folder = Path.Combine(Root, StoreLayout.AttemptPrefix(BatchJob, Run, index, attempt));
        Directory.CreateDirectory(folder);
        var row = new LedgerRow
        {
            BatchJob = BatchJob, Namespace = "default", Run = Run, Index = index, Attempt = attempt, Repeat = 0, Seed = seed,
            Params = JsonSerializer.SerializeToElement(parameters),
            Status = status, ExitCode = exitCode ?? (status == "succeeded" ? 0 : 1), Reason = reason,
            StartedAt = Start.AddSeconds(startSeconds), FinishedAt = Start.AddSeconds(startSeconds + seconds), DurationSeconds = seconds,
            Backend = backend, ReusedFrom = reusedFrom, VcpuSeconds = vcpuSeconds ?? seconds, GibSeconds = gibSeconds ?? seconds / 2,
            Capacity = capacity, OutputRows = rows?.Count() ?? 0,
        };
        File.WriteAllBytes(Path.Combine(folder, StoreLayout.LedgerFile), row.ToJsonUtf8());
        if (rows is not null)
        {
            var output = Directory.CreateDirectory(Path.Combine(folder, StoreLayout.OutputFolder)).FullName;
            File.WriteAllText(Path.Combine(output, "results.jsonl"), string.Concat(rows.Select(r => JsonSerializer.Serialize(r) + "\n")), Encoding.UTF8);
        }
    }

    /// <summary>The report over this store, as <c>batchrunner report</c> builds it.</summary>
    public SweepReport? Report(PriceTable? prices = null)
    {
        using var engine = ResultsQueryEngine.Open(Root, new ViewScope(BatchJob, Run));
        return SweepReportBuilder.Build(engine, Request(prices));
    }

    public ReportRequest Request(PriceTable? prices = null) =>
        new(BatchJob, "default", Run, Root, prices ?? PriceTable.Defaults, "test prices",
            (index, attempt) => new Uri(Path.Combine(Root, StoreLayout.AttemptPrefix(BatchJob, Run, (int)index, (int)attempt), StoreLayout.LogsFolder) + "/").AbsoluteUri,
            Start.AddHours(1));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Removed by the OS's temp cleaning later.
        }
    }
}
