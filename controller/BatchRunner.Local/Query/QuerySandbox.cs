using System.Runtime.InteropServices;
using DuckDB.NET.Data;
using DuckDB.NET.Native;

namespace BatchRunner.Local.Query;

/// <summary>A query that <c>batchrunner query</c> does not run: not one statement, or not one that only reads.</summary>
public sealed class QueryRefusedException(string message) : Exception(message);

/// <summary>
/// What a person's SQL may do: read the store's tables, nothing else. Two locks, both DuckDB's own rather than string
/// filters: the engine is locked down once its views exist (no file outside the store, no extension installed or
/// loaded, the configuration frozen so no SET undoes it), and each query is parsed and bound by DuckDB first: one
/// statement, and of a kind that only reads (SELECT and its forms — WITH, VALUES, FROM, DESCRIBE, SHOW, SUMMARIZE,
/// PRAGMA functions — or EXPLAIN); COPY, ATTACH, INSTALL, SET, CREATE and the rest are refused by name.
/// </summary>
public static partial class QuerySandbox
{
    /// <summary>DuckDB's statement types (duckdb.h, duckdb_statement_type) a reader may run.</summary>
    private static readonly Dictionary<int, string> Kinds = new()
    {
        [1] = "SELECT", [2] = "INSERT", [3] = "UPDATE", [4] = "EXPLAIN", [5] = "DELETE", [6] = "PREPARE", [7] = "CREATE", [8] = "EXECUTE",
        [9] = "ALTER", [10] = "TRANSACTION", [11] = "COPY", [12] = "ANALYZE", [13] = "SET", [14] = "CREATE FUNCTION", [15] = "DROP",
        [16] = "EXPORT", [17] = "PRAGMA", [18] = "VACUUM", [19] = "CALL", [20] = "SET", [21] = "LOAD", [22] = "RELATION",
        [23] = "INSTALL", [24] = "LOGICAL PLAN", [25] = "ATTACH", [26] = "DETACH", [27] = "MULTI",
    };

    private const int Select = 1;
    private const int Explain = 4;

    /// <summary>Locks <paramref name="connection"/> down to reading files under <paramref name="root"/>; views over them keep working.</summary>
    public static void Lock(DuckDBConnection connection, string root)
    {
        foreach (var setting in new[]
        {
            "SET autoinstall_known_extensions = false",
            "SET autoload_known_extensions = false",
            $"SET allowed_directories = [{ResultsQueryEngine.Literal(Path.GetFullPath(root).TrimEnd('/') + "/")}]",
            "SET enable_external_access = false",
            "SET lock_configuration = true",
        })
        {
            using var command = connection.CreateCommand();
            command.CommandText = setting;
            command.ExecuteNonQuery();
        }
    }

    /// <summary>Throws <see cref="QueryRefusedException"/> unless <paramref name="sql"/> is one statement that only reads; a syntax error comes as DuckDB's.</summary>
    public static void CheckReadOnly(DuckDBConnection connection, string sql)
    {
        var count = NativeMethods.ExtractStatements.DuckDBExtractStatements(connection.NativeConnection, sql, out var extracted);
        try
        {
            if (count == 0)
            {
                var error = NativeMethods.ExtractStatements.DuckDBExtractStatementsError(extracted);
                throw string.IsNullOrEmpty(error)
                    ? new QueryRefusedException("the query is empty: give one SQL statement")
                    : new QueryRefusedException(error);
            }

            if (count > 1)
            {
                throw new QueryRefusedException($"the query has {count} statements; batchrunner query runs one at a time (none of these ran)");
            }

            if (NativeMethods.ExtractStatements.DuckDBPrepareExtractedStatement(connection.NativeConnection, extracted, 0, out var prepared) != DuckDBState.Success)
            {
                using (prepared)
                {
                    throw new QueryRefusedException(NativeMethods.PreparedStatements.DuckDBPrepareError(prepared) ?? "the query does not parse");
                }
            }

            using (prepared)
            {
                var kind = PreparedStatementType(prepared.DangerousGetHandle());
                if (kind is not (Select or Explain))
                {
                    throw new QueryRefusedException(
                        $"{Kinds.GetValueOrDefault(kind, "this kind of statement")} is not allowed: batchrunner query only reads the store's tables (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)");
                }
            }
        }
        finally
        {
            extracted.Dispose();
        }
    }

    /// <summary>duckdb_prepared_statement_type: DuckDB.NET does not bind it (1.5.6).</summary>
    [LibraryImport("duckdb", EntryPoint = "duckdb_prepared_statement_type")]
    private static partial int PreparedStatementType(nint prepared);
}
