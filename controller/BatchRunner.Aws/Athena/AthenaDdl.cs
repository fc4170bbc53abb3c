using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using BatchRunner.Core.Store;

namespace BatchRunner.Aws.Athena;

/// <summary>One statement of the Athena setup, with what it does (Athena runs one statement per query).</summary>
public sealed record AthenaStatement(string Purpose, string Sql, bool NeedsDatabase = true);

/// <summary>
/// The Athena objects over a store's compacted runs, with partition projection (no crawler, no <c>MSCK REPAIR</c>):
/// <list type="bullet">
/// <item>per BatchJob (per schema, when its runs typed a column differently), two external Parquet tables partitioned by <c>run</c> with <c>projection.run.type =
/// injected</c>: <c>indexes_NAME</c> over each run's compacted ledger rows and <c>results_NAME</c> over its compacted
/// results, both with the parameters as columns. Athena reads every file under a location, so they point at the
/// compacted folders, never at the raw attempt folders with their logs. Every run of a BatchJob is readable as
/// soon as it is compacted, without touching the table; a query of these tables must name its runs.</item>
/// <item>two views, <c>indexes</c> and <c>results</c>, with the columns of the DuckDB views of the local store
/// (every BatchJob's parameters as columns) over the runs known when they were generated: the same SQL answers
/// the same rows on both engines. Generating them again after new runs is what registers those runs.</item>
/// </list>
/// Each BatchJob's tables are dropped and created again rather than altered, so a new parameter or output column
/// appears; dropping an external table leaves its files alone.
/// </summary>
public static partial class AthenaDdl
{
    /// <summary>Where, under a run's prefix, compaction leaves the run's ledger rows (Parquet; <c>StoreLayout.CompactedPrefix</c>).</summary>
    public const string IndexesFolder = "compacted/indexes";

    /// <summary>Where, under a run's prefix, compaction leaves the run's results (Parquet).</summary>
    public const string ResultsFolder = "compacted/results";

    /// <summary>Athena's placeholder for the projected run in a location template.</summary>
    private const string RunPlaceholder = "${run}";

    /// <summary>The ledger's columns before the parameters, as the DuckDB view orders them.</summary>
    private static readonly (string Name, AthenaType Type)[] LedgerKeys = [.. LedgerColumns.Keys.Select(c => (c.Name, TypeOf(c.Type)))];

    /// <summary>The ledger's columns after the parameters.</summary>
    private static readonly (string Name, AthenaType Type)[] LedgerOutcome = [.. LedgerColumns.Outcome.Select(c => (c.Name, TypeOf(c.Type)))];

    private static AthenaType TypeOf(LedgerType type) => type switch
    {
        LedgerType.Integer => AthenaType.Bigint,
        LedgerType.Real => AthenaType.Double,
        LedgerType.Timestamp => AthenaType.Timestamp,
        _ => AthenaType.String,
    };

    /// <summary>The key columns of every results row, before the parameters.</summary>
    private static readonly (string Name, AthenaType Type)[] ResultKeys =
    [
        ("batchjob", AthenaType.String), ("namespace", AthenaType.String), ("run", AthenaType.String),
        ("index", AthenaType.Bigint), ("repeat", AthenaType.Bigint), ("seed", AthenaType.Bigint),
    ];

    /// <summary>The statements, in order: database, each BatchJob's tables, then the two views.</summary>
    public static IReadOnlyList<AthenaStatement> Generate(AthenaCatalog catalog, string database)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        CheckName(database, "database");
        var root = StoreRoot(catalog.StoreUri);
        // Athena reads a Parquet column only as its file's type (or int as bigint, float as double), so a BatchJob
        // whose runs typed a column differently gets one table per schema; the views cast them to one type.
        var jobs = Validate(catalog).GroupBy(r => r.BatchJob, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .SelectMany(job =>
            {
                var schemas = job.GroupBy(Signature, StringComparer.Ordinal).ToList();
                return schemas.Select(g => new JobSchema(
                        job.Key,
                        schemas.Count == 1 ? "" : "_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(g.Key)))[..6],
                        g.Select(r => r.RunId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
                        Merge(g.First().Parameters), Merge(g.First().Outputs)))
                    .OrderBy(j => j.Runs[0], StringComparer.Ordinal);
            })
            .ToList();

        var statements = new List<AthenaStatement>
        {
            new($"database {database}", $"CREATE DATABASE IF NOT EXISTS `{database}`", NeedsDatabase: false),
        };
        foreach (var job in jobs)
        {
            statements.Add(new($"drop table {job.IndexesTable}", $"DROP TABLE IF EXISTS `{job.IndexesTable}`"));
            statements.Add(new($"table {job.IndexesTable}", IndexesTableDdl(root, job)));
            statements.Add(new($"drop table {job.ResultsTable}", $"DROP TABLE IF EXISTS `{job.ResultsTable}`"));
            statements.Add(new($"table {job.ResultsTable}", ResultsTableDdl(root, job)));
        }

        statements.Add(new("view indexes", IndexesView(jobs)));
        statements.Add(new("view results", ResultsView(jobs)));
        return statements;
    }

    /// <summary>The table of a BatchJob's ledger rows: <c>mmc-sweep</c> → <c>indexes_mmc_sweep</c>.</summary>
    public static string IndexesTable(string batchJob) => "indexes_" + batchJob.Replace('-', '_');

    /// <summary>The table of a BatchJob's compacted results: <c>mmc-sweep</c> → <c>results_mmc_sweep</c>.</summary>
    public static string ResultsTable(string batchJob) => "results_" + batchJob.Replace('-', '_');

    /// <summary>The runs of one BatchJob that share one schema, and the suffix of their tables' names.</summary>
    private sealed record JobSchema(string Name, string Suffix, IReadOnlyList<string> Runs, IReadOnlyList<AthenaColumn> Parameters, IReadOnlyList<AthenaColumn> Outputs)
    {
        public string IndexesTable => AthenaDdl.IndexesTable(Name) + Suffix;

        public string ResultsTable => AthenaDdl.ResultsTable(Name) + Suffix;
    }

    private static string Signature(AthenaRunSchema run) =>
        string.Join(",", Merge(run.Parameters).Select(c => $"{c.Name}:{c.Type}")) + "|" + string.Join(",", Merge(run.Outputs).Select(c => $"{c.Name}:{c.Type}"));

    private static string IndexesTableDdl(string root, JobSchema job)
    {
        var columns = LedgerKeys.Where(c => c.Name is not ("run" or "batchjob")).Select(c => new AthenaColumn(c.Name, c.Type))
            .Concat(job.Parameters).Concat(LedgerOutcome.Select(c => new AthenaColumn(c.Name, c.Type)));
        return ParquetTable(job.IndexesTable, columns, $"{root}batchjob={job.Name}/", IndexesFolder);
    }

    private static string ResultsTableDdl(string root, JobSchema job)
    {
        var columns = ResultKeys.Where(c => c.Name is not ("run" or "batchjob")).Select(c => new AthenaColumn(c.Name, c.Type))
            .Concat(job.Parameters).Concat(job.Outputs);
        return ParquetTable(job.ResultsTable, columns, $"{root}batchjob={job.Name}/", ResultsFolder);
    }

    private static string ParquetTable(string name, IEnumerable<AthenaColumn> columns, string location, string folder) => $"""
        CREATE EXTERNAL TABLE `{name}` (
          {string.Join(",\n  ", columns.Select(c => $"`{c.Name}` {c.Type.HiveName()}"))}
        )
        PARTITIONED BY (`run` string)
        STORED AS PARQUET
        LOCATION '{location}'
        TBLPROPERTIES (
          'projection.enabled' = 'true',
          'projection.run.type' = 'injected',
          'storage.location.template' = '{location}run={RunPlaceholder}/{folder}/'
        )
        """;

    private static string IndexesView(IReadOnlyList<JobSchema> jobs)
    {
        var parameters = Merge(jobs.SelectMany(j => j.Parameters));
        var columns = LedgerKeys.Select(c => new AthenaColumn(c.Name, c.Type)).Concat(parameters)
            .Concat(LedgerOutcome.Select(c => new AthenaColumn(c.Name, c.Type))).ToList();
        var branches = jobs.Select(job =>
        {
            var own = job.Parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
            var select = columns.Select(c => c.Name switch
            {
                "batchjob" => $"{Literal(job.Name)} AS \"batchjob\"",
                _ when parameters.Any(p => p.Name == c.Name) => own.TryGetValue(c.Name, out var mine)
                    ? Cast(Quote(c.Name), mine.Type, c.Type, c.Name)
                    : $"CAST(NULL AS {c.Type.SqlName()}) AS {Quote(c.Name)}",
                _ => Quote(c.Name),
            });
            return $"SELECT {string.Join(", ", select)}\nFROM {Quote(job.IndexesTable)}\nWHERE \"run\" IN ({string.Join(", ", job.Runs.Select(Literal))})";
        }).ToList();
        return $"CREATE OR REPLACE VIEW \"indexes\" AS\n{Union(branches, columns)}";
    }

    private static string ResultsView(IReadOnlyList<JobSchema> jobs)
    {
        var parameters = Merge(jobs.SelectMany(j => j.Parameters));
        // As in the DuckDB view: an output named like a key or any BatchJob's parameter is kept as output_NAME.
        var taken = ResultKeys.Select(c => c.Name).Concat(parameters.Select(p => p.Name)).ToHashSet(StringComparer.Ordinal);
        string ViewName(AthenaColumn output) => taken.Contains(output.Name) ? "output_" + output.Name : output.Name;
        var outputs = Merge(jobs.SelectMany(j => j.Outputs).Select(o => o with { Name = ViewName(o) }));
        var columns = ResultKeys.Select(c => new AthenaColumn(c.Name, c.Type)).Concat(parameters).Concat(outputs).ToList();
        var branches = jobs.Select(job =>
        {
            var own = job.Parameters.Select(p => (View: p.Name, Column: p))
                .Concat(job.Outputs.Select(o => (View: ViewName(o), Column: o)))
                .ToDictionary(p => p.View, p => p.Column, StringComparer.Ordinal);
            var select = columns.Select(c => c.Name switch
            {
                "batchjob" => $"{Literal(job.Name)} AS \"batchjob\"",
                "namespace" or "run" or "index" or "repeat" or "seed" => Quote(c.Name),
                _ => own.TryGetValue(c.Name, out var mine)
                    ? Cast(Quote(mine.Name), mine.Type, c.Type, c.Name)
                    : $"CAST(NULL AS {c.Type.SqlName()}) AS {Quote(c.Name)}",
            });
            return $"SELECT {string.Join(", ", select)}\nFROM {Quote(job.ResultsTable)}\nWHERE \"run\" IN ({string.Join(", ", job.Runs.Select(Literal))})";
        }).ToList();
        return $"CREATE OR REPLACE VIEW \"results\" AS\n{Union(branches, columns)}";
    }

    /// <summary>The branches joined with UNION ALL; with no BatchJob yet, an empty relation of the same columns.</summary>
    private static string Union(IReadOnlyList<string> branches, IReadOnlyList<AthenaColumn> columns) =>
        branches.Count > 0
            ? string.Join("\nUNION ALL\n", branches)
            : $"SELECT {string.Join(", ", columns.Select(c => $"CAST(NULL AS {c.Type.SqlName()}) AS {Quote(c.Name)}"))}\nWHERE 1 = 0";

    private static string Cast(string expression, AthenaType own, AthenaType target, string name) =>
        own != target ? $"CAST({expression} AS {target.SqlName()}) AS {Quote(name)}"
        : expression == Quote(name) ? expression
        : $"{expression} AS {Quote(name)}";

    /// <summary>One column per name (case-folded, as Athena's catalog keeps names), widened across runs.</summary>
    private static List<AthenaColumn> Merge(IEnumerable<AthenaColumn> columns)
    {
        var merged = new List<AthenaColumn>();
        foreach (var column in columns)
        {
            var name = column.Name.ToLowerInvariant();
            var at = merged.FindIndex(c => c.Name == name);
            if (at < 0)
            {
                merged.Add(column with { Name = name });
            }
            else
            {
                merged[at] = merged[at] with { Type = AthenaTypes.Widen(merged[at].Type, column.Type) };
            }
        }

        return merged;
    }

    private static IEnumerable<AthenaRunSchema> Validate(AthenaCatalog catalog)
    {
        var reserved = LedgerKeys.Concat(LedgerOutcome).Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var run in catalog.Runs)
        {
            if (!DnsLabel().IsMatch(run.BatchJob))
            {
                throw new ArgumentException($"BatchJob name '{run.BatchJob}' is not a DNS label");
            }

            if (!RunId().IsMatch(run.RunId))
            {
                throw new ArgumentException($"run id '{run.RunId}' of {run.BatchJob} is not letters and digits");
            }

            foreach (var column in run.Parameters.Concat(run.Outputs))
            {
                if (!ColumnName().IsMatch(column.Name))
                {
                    throw new ArgumentException(
                        $"column '{column.Name}' of {run.BatchJob}/{run.RunId}: Athena columns are letters, digits and _");
                }
            }

            foreach (var parameter in run.Parameters.Where(p => reserved.Contains(p.Name.ToLowerInvariant())))
            {
                throw new ArgumentException($"parameter '{parameter.Name}' of {run.BatchJob}/{run.RunId} collides with a ledger column");
            }

            var names = run.Parameters.Concat(run.Outputs).Select(c => c.Name.ToLowerInvariant())
                .Concat(ResultKeys.Select(c => c.Name)).GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
            if (names is not null)
            {
                throw new ArgumentException(
                    $"column '{names.Key}' appears twice in {run.BatchJob}/{run.RunId} (Athena folds names to lower case)");
            }

            yield return run;
        }
    }

    /// <summary><c>s3://bucket/prefix</c> with exactly one trailing slash, as Athena wants a location.</summary>
    private static string StoreRoot(string storeUri)
    {
        if (!Uri.TryCreate(storeUri, UriKind.Absolute, out var uri) || uri.Scheme != "s3" || string.IsNullOrEmpty(uri.Host))
        {
            throw new ArgumentException($"the store '{storeUri}' is not an s3://bucket/prefix URI; Athena reads only S3");
        }

        if (storeUri.Contains('\'', StringComparison.Ordinal) || storeUri.Contains("//", StringComparison.Ordinal) && storeUri.IndexOf("//", 5, StringComparison.Ordinal) >= 0)
        {
            throw new ArgumentException($"the store '{storeUri}' has a quote or an empty folder (//), which Athena cannot locate");
        }

        return storeUri.TrimEnd('/') + "/";
    }

    private static void CheckName(string name, string what)
    {
        if (string.IsNullOrEmpty(name) || !ColumnName().IsMatch(name))
        {
            throw new ArgumentException($"the Athena {what} '{name}' must be letters, digits and _");
        }
    }

    private static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex("^[a-z0-9]+$")]
    private static partial Regex RunId();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex ColumnName();
}
