using System.Globalization;
using System.Text.Json;
using BatchRunner.Core.Store;
using BatchRunner.Local.Query;
using BatchRunner.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRunner.Athena.Tests;

/// <summary>
/// A store with three runs of two BatchJobs written in the store layout, each run then compacted to Parquet by
/// the compactor (compacted/indexes, compacted/results, the schema in _run.json): a grid sweep whose index 1 failed
/// once before it succeeded and whose index 5 never did, a second run of it, and a BatchJob without parameters
/// whose output column is named like the first one's parameter, with two runs that typed "samples" differently. The local copy of bucket <see cref="Bucket"/>.
/// </summary>
internal sealed class SweepStore : IDisposable
{
    public const string Bucket = "sweeps";
    public const string Prefix = "team/results";

    public SweepStore()
    {
        BucketRoot = Directory.CreateTempSubdirectory("athena-bucket-").FullName;
        Root = Path.Combine(BucketRoot, Prefix);
        WriteRun("mmc-sweep", "r00000000aaa", indexes: 8, point => new { servers = 1 + point % 2, arrival_rate = 0.25 * (1 + point / 2) },
            (index, p) => $$"""{"mean_wait": {{Num(0.1 * index + 0.013)}}, "served": {{100 + index}}, "label": "i{{index}}"}""" + "\n" +
                          $$"""{"mean_wait": {{Num(0.2 * index)}}, "served": {{200 + index}}, "label": null}""");
        WriteRun("mmc-sweep", "r00000000bbb", indexes: 3, point => new { servers = 4, arrival_rate = 0.9 },
            (index, p) => $$"""{"mean_wait": {{Num(1.5 + index)}}, "served": {{7 * index}}, "label": "b"}""");
        WriteRun("pi-estimate", "r00000000ccc", indexes: 4, point => new { },
            (index, p) => $$"""{"estimate": {{Num(3.14 + 0.001 * index)}}, "samples": {{1000 * (index + 1)}}, "servers": "s{{index}}"}""");
        // A later run of the same BatchJob whose "samples" are fractional: its Parquet types the column DOUBLE.
        WriteRun("pi-estimate", "r00000000ddd", indexes: 4, point => new { },
            (index, p) => $$"""{"estimate": {{Num(3.1 + 0.01 * index)}}, "samples": {{Num(1000.5 * (index + 1))}}, "servers": "d{{index}}"}""");
    }

    /// <summary>The folder standing for the bucket (its objects are files under it).</summary>
    public string BucketRoot { get; }

    /// <summary>The store's root on disk: the raw layout plus the compacted files.</summary>
    public string Root { get; }

    public string StoreUri => $"s3://{Bucket}/{Prefix}";

    public void Dispose() => Directory.Delete(BucketRoot, recursive: true);

    private void WriteRun(string job, string run, int indexes, Func<int, object> parameters, Func<int, object, string> output)
    {
        var start = new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);
        for (var index = 0; index < indexes; index++)
        {
            var p = parameters(index / 2);
            // Index 1 fails once, then succeeds; index 5 fails every time (its partial output must not count).
            var attempts = index == 1 ? 2 : index == 5 ? 2 : 1;
            for (var attempt = 1; attempt <= attempts; attempt++)
            {
                var succeeded = index != 5 && attempt == attempts;
                var row = new LedgerRow
                {
                    BatchJob = job, Namespace = "default", Run = run, Index = index, Attempt = attempt, Repeat = index % 2,
                    Seed = 1000 + index, Params = JsonSerializer.SerializeToElement(p), Status = succeeded ? "succeeded" : "failed",
                    ExitCode = succeeded ? 0 : 3, Reason = succeeded ? null : "exit code 3",
                    StartedAt = start.AddSeconds(index * 10 + attempt), FinishedAt = start.AddSeconds(index * 10 + attempt + 1.25),
                    DurationSeconds = 1.25, Backend = "local", OutputFiles = 1, OutputBytes = 10, OutputRows = succeeded ? 1 : 0,
                };
                var ledger = Path.Combine(Root, StoreLayout.LedgerKey(job, run, index, attempt));
                Directory.CreateDirectory(Path.GetDirectoryName(ledger)!);
                File.WriteAllBytes(ledger, row.ToJsonUtf8());
                var outputs = Path.Combine(Root, StoreLayout.OutputPrefix(job, run, index, attempt));
                Directory.CreateDirectory(outputs);
                File.WriteAllText(Path.Combine(outputs, "rows.jsonl"), succeeded ? output(index, p) + "\n" : """{"mean_wait": -1, "served": -1}""" + "\n");
            }
        }

        // Compacted as a finished run is: Parquet under compacted/, the schema in the run's manifest.
        new ResultsCompactor(NullLogger<ResultsCompactor>.Instance, TimeProvider.System)
            .CompactAsync(new LocalResultsStore(Root), job, run, force: false, CancellationToken.None).GetAwaiter().GetResult();
    }

    private static string Num(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
