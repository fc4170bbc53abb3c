using BatchRunner.Aws.Athena;
using DuckDB.NET.Data;

namespace BatchRunner.Cli.Athena;

/// <summary>
/// The schemas of a store's compacted runs, read from their Parquet files with DuckDB: the parameters are the
/// compacted ledger's columns that are not ledger columns, the outputs the compacted results' columns that are
/// neither keys nor parameters. Runs not compacted yet are left out (Athena reads only compacted files).
/// </summary>
public static class CompactedRunSchemas
{
    /// <summary>Columns of a compacted ledger that are not parameters.</summary>
    private static readonly HashSet<string> LedgerColumns = new(StringComparer.OrdinalIgnoreCase)
    {
        "batchjob", "namespace", "run", "index", "attempt", "repeat", "seed", "status", "exit_code", "reason", "started_at",
        "finished_at", "duration_seconds", "backend", "output_files", "output_bytes", "output_rows", "output_malformed", "output_note",
    };

    private static readonly HashSet<string> ResultKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "batchjob", "namespace", "run", "index", "attempt", "repeat", "seed",
    };

    /// <summary>Every compacted run under a local store root (or a local copy of an S3 store), in name order.</summary>
    public static IReadOnlyList<AthenaRunSchema> Read(string root)
    {
        var runs = new List<AthenaRunSchema>();
        if (!Directory.Exists(root))
        {
            return runs;
        }

        using var duck = new DuckDBConnection("DataSource=:memory:");
        duck.Open();
        foreach (var jobDir in Directory.EnumerateDirectories(root, "batchjob=*").Order(StringComparer.Ordinal))
        {
            foreach (var runDir in Directory.EnumerateDirectories(jobDir, "run=*").Order(StringComparer.Ordinal))
            {
                var indexes = Parts(Path.Combine(runDir, AthenaDdl.IndexesFolder));
                var results = Parts(Path.Combine(runDir, AthenaDdl.ResultsFolder));
                if (indexes.Count == 0)
                {
                    continue;
                }

                var parameters = Describe(duck, indexes).Where(c => !LedgerColumns.Contains(c.Name)).ToList();
                var names = parameters.Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
                var outputs = results.Count == 0 ? []
                    : Describe(duck, results).Where(c => !ResultKeys.Contains(c.Name) && !names.Contains(c.Name)).ToList();
                runs.Add(new AthenaRunSchema(
                    Path.GetFileName(jobDir)["batchjob=".Length..], Path.GetFileName(runDir)["run=".Length..], parameters, outputs));
            }
        }

        return runs;
    }

    private static List<string> Parts(string folder) =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "*.parquet").Where(f => !Path.GetFileName(f).StartsWith('_')).Order(StringComparer.Ordinal).ToList()
            : [];

    private static List<AthenaColumn> Describe(DuckDBConnection duck, IReadOnlyList<string> files)
    {
        using var command = duck.CreateCommand();
        var list = string.Join(", ", files.Select(f => "'" + f.Replace("'", "''", StringComparison.Ordinal) + "'"));
        command.CommandText = $"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet([{list}], union_by_name = true))";
        using var reader = command.ExecuteReader();
        var columns = new List<AthenaColumn>();
        while (reader.Read())
        {
            columns.Add(new AthenaColumn(reader.GetString(0), AthenaTypes.FromDuckDb(reader.GetString(1))));
        }

        return columns;
    }
}
