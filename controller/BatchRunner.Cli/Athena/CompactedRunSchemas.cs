using BatchRunner.Aws.Athena;
using BatchRunner.Core.Store;
using BatchRunner.Local.Query;
using BatchRunner.Store;

namespace BatchRunner.Cli.Athena;

/// <summary>
/// The schemas of a store's compacted runs, from their manifests (<c>_run.json</c>, whose compaction section
/// records each table's columns and DuckDB types), on S3 or in a folder alike: the parameters are the compacted
/// ledger's columns that are not ledger columns, the outputs the compacted results' columns that are neither keys
/// nor parameters. Runs not compacted (or being compacted again) are left out: Athena reads only compacted files.
/// </summary>
public static class CompactedRunSchemas
{
    /// <summary>Columns of a compacted ledger that are not parameters.</summary>
    private static readonly IReadOnlySet<string> LedgerColumns = Core.Store.LedgerColumns.Names;

    private static readonly HashSet<string> ResultKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "batchjob", "namespace", "run", "index", "attempt", "repeat", "seed",
    };

    public static async Task<IReadOnlyList<AthenaRunSchema>> ReadAsync(IResultsStore store, CancellationToken cancellation)
    {
        var runs = new List<AthenaRunSchema>();
        foreach (var (batchJob, runId) in await ResultsCompactor.FindRunsAsync(store, null, cancellation).ConfigureAwait(false))
        {
            var manifest = await store.GetBytesAsync(StoreLayout.RunManifestKey(batchJob, runId), cancellation).ConfigureAwait(false);
            if (manifest is null || CompactionState.Read(manifest) is not { } compaction)
            {
                continue;
            }

            var parameters = compaction.Indexes.Schema.Where(c => !LedgerColumns.Contains(c.Name))
                .Select(c => new AthenaColumn(c.Name, AthenaTypes.FromDuckDb(c.Type))).ToList();
            var names = parameters.Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var outputs = compaction.Results.Schema.Where(c => !ResultKeys.Contains(c.Name) && !names.Contains(c.Name))
                .Select(c => new AthenaColumn(c.Name, AthenaTypes.FromDuckDb(c.Type))).ToList();
            runs.Add(new AthenaRunSchema(batchJob, runId, parameters, outputs));
        }

        return runs;
    }
}
