using System.Data.Common;
using BatchRunner.Core.Store;
using DuckDB.NET.Data;

namespace BatchRunner.Local.Query;

/// <summary>A query's answer: column names and rows, values as DuckDB gives them.</summary>
public sealed record QueryResult(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows);

/// <summary>
/// Answers SQL over a results root with DuckDB, through two views over the store layout:
/// <c>indexes</c> (one ledger row per attempt) and <c>results</c> (the rows the successful attempt of each index
/// wrote), both with the sweep parameters as columns. Nothing is loaded or copied: the views read the files.
/// </summary>
public sealed class ResultsQueryEngine : IDisposable
{
    private static readonly string[] LedgerColumns =
    [
        "batchjob", "namespace", "run", "index", "attempt", "repeat", "seed", "status", "exit_code", "reason",
        "started_at", "finished_at", "duration_seconds", "backend", "output_files", "output_bytes",
    ];

    private static readonly string[] HivePartitions = ["batchjob", "run", "index", "attempt"];

    private readonly DuckDBConnection _connection;

    private ResultsQueryEngine(DuckDBConnection connection) => _connection = connection;

    /// <summary>Opens an in-memory DuckDB with the two views defined over <paramref name="resultsRoot"/>.</summary>
    public static ResultsQueryEngine Open(string resultsRoot)
    {
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        var engine = new ResultsQueryEngine(connection);
        try
        {
            engine.DefineViews(Path.GetFullPath(resultsRoot));
            return engine;
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    public QueryResult Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        return Read(reader);
    }

    public void Dispose() => _connection.Dispose();

    private void DefineViews(string root)
    {
        var ledgerGlob = Literal(Path.Combine(root, StoreLayout.LedgerGlob));
        var parameters = Array.Empty<string>();
        if (HasFiles(ledgerGlob))
        {
            Run($"CREATE VIEW ledger_raw AS SELECT * FROM read_json({ledgerGlob}, format = 'auto', union_by_name = true)");
            parameters = ParameterNames();
            var parameterColumns = parameters.Select(p => $"params.{Ident(p)} AS {Ident(p)}");
            var columns = LedgerColumns.Take(7).Select(Ident).Concat(parameterColumns).Concat(LedgerColumns.Skip(7).Select(Ident));
            Run($"CREATE VIEW indexes AS SELECT {string.Join(", ", columns)} FROM ledger_raw");
        }
        else
        {
            Run("""
                CREATE VIEW indexes AS SELECT * FROM (VALUES (NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::BIGINT, NULL::BIGINT,
                    NULL::BIGINT, NULL::BIGINT, NULL::VARCHAR, NULL::BIGINT, NULL::VARCHAR, NULL::TIMESTAMP, NULL::TIMESTAMP,
                    NULL::DOUBLE, NULL::VARCHAR, NULL::BIGINT, NULL::BIGINT))
                    AS t(batchjob, namespace, run, "index", attempt, "repeat", seed, status, exit_code, reason, started_at,
                         finished_at, duration_seconds, backend, output_files, output_bytes)
                WHERE false
                """);
        }

        var sources = new List<string>();
        var jsonGlob = Literal(Path.Combine(root, StoreLayout.OutputGlob("jsonl")));
        if (HasFiles(jsonGlob))
        {
            sources.Add($"SELECT * FROM read_json({jsonGlob}, format = 'newline_delimited', union_by_name = true, hive_partitioning = true, ignore_errors = true)");
        }

        var csvGlob = Literal(Path.Combine(root, StoreLayout.OutputGlob("csv")));
        if (HasFiles(csvGlob))
        {
            sources.Add($"SELECT * FROM read_csv({csvGlob}, header = true, union_by_name = true, hive_partitioning = true, ignore_errors = true)");
        }

        var keyColumns = new[] { "batchjob", "namespace", "run", "index", "repeat", "seed" };
        var leading = keyColumns.Select(c => $"l.{Ident(c)}").Concat(parameters.Select(p => $"l.{Ident(p)}")).ToList();
        if (sources.Count == 0)
        {
            Run($"CREATE VIEW results AS SELECT {string.Join(", ", leading)} FROM indexes l WHERE false");
            return;
        }

        Run($"CREATE VIEW results_raw AS {string.Join(" UNION ALL BY NAME ", sources)}");
        var taken = new HashSet<string>(keyColumns.Concat(parameters), StringComparer.OrdinalIgnoreCase);
        var outputs = Execute("SELECT column_name FROM (DESCRIBE results_raw)").Rows
            .Select(row => (string)row[0]!)
            .Where(name => !HivePartitions.Contains(name, StringComparer.OrdinalIgnoreCase))
            // An output column named like a parameter or key keeps its value under a prefixed name.
            .Select(name => taken.Contains(name) ? $"r.{Ident(name)} AS {Ident("output_" + name)}" : $"r.{Ident(name)}");
        Run($"""
            CREATE VIEW results AS
            SELECT {string.Join(", ", leading.Concat(outputs))}
            FROM results_raw r
            JOIN indexes l ON l.batchjob = r.batchjob AND l.run = r.run
                AND l."index" = CAST(r."index" AS BIGINT) AND l.attempt = CAST(r.attempt AS BIGINT)
            WHERE l.status = 'succeeded'
            """);
    }

    private string[] ParameterNames()
    {
        var rows = Execute("SELECT typeof(params) FROM ledger_raw LIMIT 1").Rows;
        var type = rows.Count > 0 ? rows[0][0] as string : null;
        if (type is null || !type.StartsWith("STRUCT", StringComparison.Ordinal))
        {
            // No sweep anywhere: params is always {} and there are no parameter columns.
            return [];
        }

        return Execute("SELECT column_name FROM (DESCRIBE SELECT params.* FROM ledger_raw)").Rows.Select(r => (string)r[0]!).ToArray();
    }

    private bool HasFiles(string globLiteral) =>
        Execute($"SELECT count(*) FROM (SELECT * FROM glob({globLiteral}) LIMIT 1)").Rows[0][0] is long count && count > 0;

    private void Run(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static QueryResult Read(DbDataReader reader)
    {
        var columns = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToArray();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return new QueryResult(columns, rows);
    }

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string Ident(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
