using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Core.Store;
using BatchRunner.Store;
using DuckDB.NET.Data;

namespace BatchRunner.Local.Query;

/// <summary>
/// A query's answer: column names and rows, values as DuckDB gives them, except nested ones (lists, arrays,
/// structs, maps, unions), which come as <see cref="JsonText"/>.
/// </summary>
/// <param name="Truncated">True when the answer had more rows than were kept (see <see cref="ResultsQueryEngine.Query"/>).</param>
public sealed record QueryResult(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows, bool Truncated = false);

/// <summary>A value DuckDB rendered as JSON (<c>to_json</c>): a nested value of a query's answer.</summary>
public readonly record struct JsonText(string Json)
{
    public override string ToString() => Json;
}

/// <summary>Which runs the views show, and whether compacted runs are read from Parquet (the default) or from their raw files.</summary>
/// <param name="BatchJob">With <paramref name="RunId"/>: only that run.</param>
/// <param name="RawOnly">Read every run from its raw files, as compaction itself does.</param>
/// <param name="ReadOnce">
/// Read the raw result files once, into a table of the engine, rather than in each statement (and once more to learn
/// their structure): for work of several statements over the same files (compaction, a report), at the cost of holding
/// their lines in the engine (beyond its memory, in <paramref name="TempDirectory"/> when given).
/// </param>
/// <param name="TempDirectory">Where DuckDB may put what does not fit in memory (set before the views are defined).</param>
public sealed record ViewScope(string? BatchJob = null, string? RunId = null, bool RawOnly = false, bool ReadOnce = false, string? TempDirectory = null)
{
    public static readonly ViewScope All = new();
}

/// <summary>
/// Answers SQL over a results root with DuckDB, through two views over the store layout:
/// <c>indexes</c> (one ledger row per attempt) and <c>results</c> (the rows the successful attempt of each index
/// wrote), both with the sweep parameters as columns. Nothing is loaded or copied: the views read the files.
/// A run whose manifest records a complete compaction is read from its Parquet files only; every other run from
/// its raw files only, so no row is ever counted twice. Raw result lines that are not one JSON object are left
/// out (the attempt's ledger row counts them in <c>output_malformed</c>), not turned into empty rows.
/// </summary>
public sealed partial class ResultsQueryEngine : IDisposable
{
    /// <summary>The ledger's columns after the parameters, with the type each has when no ledger row carries it.</summary>
    private static readonly (string Name, string Type)[] LedgerTail = [.. LedgerColumns.Outcome.Select(c => (c.Name, c.Type switch
    {
        LedgerType.Integer => "BIGINT",
        LedgerType.Real => "DOUBLE",
        LedgerType.Timestamp => "TIMESTAMP",
        _ => "VARCHAR",
    }))];

    private static readonly string[] KeyColumns = [.. LedgerColumns.Keys.Select(c => c.Name)];
    private static readonly string[] ResultKeyColumns = ["batchjob", "namespace", "run", "index", "repeat", "seed"];

    private readonly DuckDBConnection _connection;
    private bool _readOnce;

    private ResultsQueryEngine(DuckDBConnection connection) => _connection = connection;

    /// <summary>Run ids read from Parquet, after <see cref="Open(string, ViewScope)"/>.</summary>
    public IReadOnlyCollection<string> CompactedRuns { get; private set; } = [];

    /// <summary>Opens an in-memory DuckDB with the two views defined over <paramref name="resultsRoot"/>.</summary>
    public static ResultsQueryEngine Open(string resultsRoot) => Open(resultsRoot, ViewScope.All);

    public static ResultsQueryEngine Open(string resultsRoot, ViewScope scope)
    {
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        var engine = new ResultsQueryEngine(connection);
        try
        {
            engine.DefineViews(Path.GetFullPath(resultsRoot), scope);
            return engine;
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs a query. A column of nested values is asked of DuckDB again as JSON: DuckDB.NET materializes lists and
    /// maps as generic collections it instantiates at run time (<c>MakeGenericType</c>), which the Native AOT CLI
    /// cannot do for every element type, and JSON is what every output format shows them as anyway.
    /// </summary>
    public QueryResult Execute(string sql) => Execute(sql, int.MaxValue, CancellationToken.None);

    /// <summary>
    /// Opens the views over <paramref name="resultsRoot"/> for a person's SQL: the engine is then locked down
    /// (<see cref="QuerySandbox"/>) and only <see cref="Query"/> should be used.
    /// </summary>
    public static ResultsQueryEngine OpenForQueries(string resultsRoot)
    {
        var engine = Open(resultsRoot);
        try
        {
            QuerySandbox.Lock(engine._connection, resultsRoot);
            return engine;
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs a person's query: one statement that only reads (else <see cref="QueryRefusedException"/>), interrupted
    /// at once when <paramref name="cancellation"/> fires (Ctrl-C, a timeout: DuckDB's interrupt, then
    /// <see cref="OperationCanceledException"/>), keeping at most <paramref name="maxRows"/> rows of the answer.
    /// </summary>
    public QueryResult Query(string sql, int maxRows, CancellationToken cancellation)
    {
        QuerySandbox.CheckReadOnly(_connection, sql);
        try
        {
            return Execute(sql, maxRows, cancellation);
        }
        catch (DuckDBException) when (cancellation.IsCancellationRequested)
        {
            throw new OperationCanceledException("the query was interrupted", cancellation);
        }
    }

    private QueryResult Execute(string sql, int maxRows, CancellationToken cancellation)
    {
        using var command = _connection.CreateCommand();
        using var interrupt = cancellation.Register(() => command.Cancel());
        cancellation.ThrowIfCancellationRequested();
        command.CommandText = sql;
        string[] columns;
        int[] nested;
        using (var reader = command.ExecuteReader())
        {
            columns = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToArray();
            nested = Enumerable.Range(0, reader.FieldCount).Where(i => NestedTypes.Contains(reader.GetDataTypeName(i))).ToArray();
            if (nested.Length == 0)
            {
                return Read(reader, nested, maxRows, cancellation);
            }
        }

        // Positional references (#1, #2, …) and the original names as aliases keep duplicate names and the order; the
        // query on lines of its own, so a comment at its end cannot swallow the closing parenthesis.
        var select = columns.Select((name, i) => (nested.Contains(i) ? $"to_json(#{i + 1})" : $"#{i + 1}") + " AS " + Ident(name));
        command.CommandText = $"SELECT {string.Join(", ", select)} FROM (\n{sql.TrimEnd().TrimEnd(';')}\n)";
        using var again = command.ExecuteReader();
        return Read(again, nested, maxRows, cancellation);
    }

    /// <summary>DuckDB.NET's names (<see cref="DbDataReader.GetDataTypeName"/>) of DuckDB's nested types.</summary>
    private static readonly HashSet<string> NestedTypes = new(StringComparer.Ordinal) { "List", "Array", "Struct", "Map", "Union" };

    /// <summary>Runs a statement that returns no rows (a COPY, a SET).</summary>
    public void Run(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public void Dispose() => _connection.Dispose();

    private void DefineViews(string root, ViewScope scope)
    {
        // Rows in the order DuckDB reads them, not the order of the files: keeping that order over thousands of small
        // files held a 32 MiB buffer per file in flight (600 MB and 1.1 s for 2,000 ledger rows, against 84 MB and
        // 0.3 s without). Every statement here that needs an order says ORDER BY; a person's query does too, as SQL has it.
        Run("SET preserve_insertion_order = false");
        _readOnce = scope.ReadOnce;
        if (scope.TempDirectory is { } spill)
        {
            Run($"SET temp_directory = {Literal(spill)}");
        }

        // 1. Which runs are read from Parquet, which from raw files (by folder, so the other's files are never opened).
        var compacted = scope.RawOnly
            ? new Dictionary<string, (string RunFolder, CompactionState State)>()
            : CompactionState.FindCompacted(root).Where(r => scope.RunId is null || r.Key == scope.RunId).ToDictionary(r => r.Key, r => r.Value, StringComparer.Ordinal);
        CompactedRuns = compacted.Keys.ToList();
        var rawRuns = RunFolders(root, scope).Where(f => !compacted.ContainsKey(Path.GetFileName(f)["run=".Length..])).ToList();
        var ledgerGlobs = rawRuns.Where(HasLedger).Select(f => Path.Combine(f, "index=*", "attempt=*", StoreLayout.LedgerFile)).ToList();
        var resultParquet = compacted.Values.SelectMany(r => r.State.Results.Files.Select(f => Path.Combine(r.RunFolder, f))).ToList();

        // 2. indexes: raw ledger rows with the parameters as columns, and the compacted runs' Parquet.
        var parameters = new List<string>();
        var indexSources = new List<Source>();
        // One read_parquet per schema: it casts every file to its first file's types, so runs typed differently are read apart.
        foreach (var group in compacted.Values.GroupBy(r => string.Join('\0', r.State.Indexes.Schema.Select(c => c.Name + "\u0001" + c.Type)), StringComparer.Ordinal))
        {
            var files = group.SelectMany(r => r.State.Indexes.Files.Select(f => Path.Combine(r.RunFolder, f)));
            indexSources.Add(new Source(group.Select(r => RunOf(r.RunFolder)).ToList(), $"SELECT * FROM read_parquet({List(files)}, union_by_name = true)"));
        }

        if (ledgerGlobs.Count > 0)
        {
            // The ledger's schema is known, so no file's schema is inferred (that costs a read of every file per
            // statement); only the parameters vary, read as JSON and typed from their merged structure.
            var schema = string.Join(", ", KeyColumns.Select(c => (c, c is "batchjob" or "namespace" or "run" ? "VARCHAR" : "BIGINT"))
                .Append(("params", "JSON")).Concat(LedgerTail)
                .Select(c => $"{Literal(c.Item1)}: {Literal(c.Item2)}"));
            // Ledger rows are small: read once into memory rather than once per statement that uses them.
            Run($"CREATE TEMP TABLE ledger_raw AS SELECT * FROM read_json({List(ledgerGlobs)}, format = 'auto', columns = {{{schema}}})");
            var parameterTypes = OutputColumns(Execute("SELECT json_group_structure(params) FROM ledger_raw").Rows[0][0] as string);
            parameters.AddRange(parameterTypes.Select(p => p.Name));
            var typed = Literal(new JsonObject(parameterTypes.Select(c => KeyValuePair.Create(c.Name, (JsonNode?)c.Type))).ToJsonString());
            var columns = KeyColumns.Select(Ident)
                .Concat(parameters.Select(p => $"__params.{Ident(p)} AS {Ident(p)}"))
                .Concat(LedgerTail.Select(c => Ident(c.Name)));
            var source = parameters.Count == 0 ? "ledger_raw" : $"(SELECT *, json_transform(params, {typed}) AS __params FROM ledger_raw)";
            Run($"CREATE VIEW indexes_raw AS SELECT {string.Join(", ", columns)} FROM {source}");
            // An index's result is its last succeeded attempt: a rerun of an index that had succeeded replaces its rows.
            Run("""
                CREATE VIEW succeeded_raw AS SELECT * FROM indexes_raw WHERE status = 'succeeded'
                QUALIFY row_number() OVER (PARTITION BY batchjob, run, "index" ORDER BY attempt DESC) = 1
                """);
            indexSources.Add(new Source(rawRuns.Select(RunOf).ToList(), "SELECT * FROM indexes_raw"));
        }

        var everyParameter = parameters.Concat(compacted.Values.SelectMany(r => ParametersOf(r.State))).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal);
        UnionByName(
            "indexes", indexSources,
            KeyColumns.Select(c => $"NULL::{(c is "batchjob" or "namespace" or "run" ? "VARCHAR" : "BIGINT")} AS {Ident(c)}").Concat(LedgerTail.Select(c => $"NULL::{c.Type} AS {Ident(c.Name)}")),
            KeyColumns.Concat(everyParameter), LedgerTail.Select(c => c.Name));

        // 3. results: the rows of each index's succeeded attempt, keys and parameters in front (ResultSources).
        DefineResults(root, rawRuns, compacted, parameters);
    }

    /// <summary>
    /// Output columns and their types from the merged JSON structure of every row: positive integers are BIGINT (as
    /// read_json makes them), and a column whose values change type between rows or indexes is kept as text.
    /// </summary>
    private static List<(string Name, JsonNode Type)> OutputColumns(string? structure)
    {
        if (structure is null || JsonNode.Parse(structure) is not JsonObject shape)
        {
            return [];
        }

        // A nested value with a part of no one type (JSON inside a STRUCT or LIST) is kept whole as its JSON text: such
        // a part does not survive Parquet as the same value.
        return shape.Select(p => (p.Key, Normalize(p.Value, topLevel: true)))
            .Select(c => (c.Key, c.Item2 is JsonValue ? c.Item2 : c.Item2.ToJsonString().Contains("\"JSON\"", StringComparison.Ordinal) ? JsonValue.Create("VARCHAR")! : c.Item2))
            .ToList();
    }

    private static JsonNode Normalize(JsonNode? type, bool topLevel) => type switch
    {
        // An object whose keys a STRUCT cannot hold apart (empty, or differing only in case) stays JSON text.
        JsonObject o when o.Any(p => p.Key.Length == 0) || o.Select(p => p.Key).Distinct(StringComparer.OrdinalIgnoreCase).Count() < o.Count =>
            JsonValue.Create(topLevel ? "VARCHAR" : "JSON")!,
        JsonObject o => new JsonObject(o.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)Normalize(p.Value, false)))),
        JsonArray a => new JsonArray(a.Select(e => (JsonNode?)Normalize(e, false)).ToArray()),
        _ => JsonValue.Create((string?)type switch
        {
            "UBIGINT" => "BIGINT",
            // Parquet has no 128-bit integers: DuckDB writes them as DOUBLE, so raw reads them so too.
            "HUGEINT" or "UHUGEINT" => "DOUBLE",
            "NULL" => "VARCHAR",
            "JSON" when topLevel => "VARCHAR",
            var other => other ?? "VARCHAR",
        })!,
    };

    /// <summary>A compacted run's parameters: the columns of its indexes table between the keys and the ledger's own.</summary>
    private static List<string> ParametersOf(CompactionState state)
    {
        var ledger = new HashSet<string>(KeyColumns.Concat(LedgerTail.Select(c => c.Name)), StringComparer.OrdinalIgnoreCase);
        return state.Indexes.Schema.Select(c => c.Name).Where(c => !ledger.Contains(c)).ToList();
    }

    /// <summary>What a compacted run's workload wrote: the columns of its results table after the keys and its parameters.</summary>
    private static IEnumerable<string> OutputsOf(CompactionState state, List<string> runParameters)
    {
        var leading = new HashSet<string>(ResultKeyColumns.Concat(runParameters), StringComparer.OrdinalIgnoreCase);
        return state.Results.Schema.Select(c => c.Name).Where(c => !leading.Contains(c));
    }

    /// <summary>Run folders under the root (one run's with a scope naming it).</summary>
    private static IEnumerable<string> RunFolders(string root, ViewScope scope)
    {
        if (scope.RunId is not null && scope.BatchJob is not null)
        {
            var folder = Path.Combine(root, StoreLayout.RunPrefix(scope.BatchJob, scope.RunId));
            return Directory.Exists(folder) ? [folder] : [];
        }

        return Directory.Exists(root)
            ? Directory.EnumerateDirectories(root, "batchjob=*").SelectMany(j => Directory.EnumerateDirectories(j, "run=*"))
                .Where(f => scope.RunId is null || Path.GetFileName(f) == "run=" + scope.RunId)
                .Order(StringComparer.Ordinal)
            : [];
    }

    private static bool HasLedger(string runFolder) =>
        Directory.EnumerateDirectories(runFolder, "index=*")
            .SelectMany(i => Directory.EnumerateDirectories(i, "attempt=*"))
            .Any(a => File.Exists(Path.Combine(a, StoreLayout.LedgerFile)));

    private static bool HasFile(string runFolder, string pattern) =>
        Directory.EnumerateDirectories(runFolder, "index=*")
            .SelectMany(i => Directory.EnumerateDirectories(i, "attempt=*"))
            .Select(a => Path.Combine(a, StoreLayout.OutputFolder))
            .Any(o => Directory.Exists(o) && Directory.EnumerateFiles(o, pattern, SearchOption.AllDirectories).Any());

    private static QueryResult Read(DbDataReader reader, int[] jsonColumns, int maxRows, CancellationToken cancellation)
    {
        var columns = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToArray();
        var isJson = Enumerable.Range(0, reader.FieldCount).Select(jsonColumns.Contains).ToArray();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            cancellation.ThrowIfCancellationRequested();
            if (rows.Count == maxRows)
            {
                return new QueryResult(columns, rows, Truncated: true);
            }

            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : isJson[i] ? new JsonText(reader.GetString(i)) : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return new QueryResult(columns, rows);
    }

    private static string List(IEnumerable<string> paths) => "[" + string.Join(", ", paths.Select(Literal)) + "]";

    /// <summary>A SQL string literal. SQL text cannot hold NUL (DuckDB's parser stops at it), so a NUL is joined in as chr(0).</summary>
    public static string Literal(string text) =>
        text.Contains('\0', StringComparison.Ordinal)
            ? "(" + string.Join(" || chr(0) || ", text.Split('\0').Select(Literal)) + ")"
            : "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>A quoted SQL identifier: any name, however hostile, as one column.</summary>
    public static string Ident(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
