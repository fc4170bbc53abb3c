using System.Globalization;
using System.Text.Json.Nodes;
using BatchRunner.Core.Store;
using BatchRunner.Store;
using DuckDB.NET.Data;

namespace BatchRunner.Local.Query;

/// <summary>
/// The <c>results</c> view, built so that no workload's output can break it for anyone else:
/// 1. every run's columns are named from its own keys (<see cref="ResultColumns"/>: empty keys, keys that differ only
///    in case and control characters all make valid, distinct names) and typed from its own rows, exactly as
///    compaction does when it writes the run's Parquet; then renamed against the parameters of every run in view;
/// 2. a column typed differently by two runs is read as the type both fit (DOUBLE for numbers, else text);
/// 3. a run whose files cannot be read is left out of the view and named in <see cref="Problems"/>, rather than
///    failing every query of the store.
/// So raw and compacted runs give the same columns and values, and one run's output never changes another's.
/// Hostile names only ever reach SQL as string literals or, once sanitized, as quoted identifiers.
/// </summary>
public sealed partial class ResultsQueryEngine
{
    private static readonly HashSet<string> NumericTypes = new(StringComparer.OrdinalIgnoreCase) { "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "DOUBLE", "FLOAT" };

    private readonly List<string> _problems = [];
    private readonly List<(string BatchJob, string Run, string Key, string Column)> _columnMap = [];

    /// <summary>What the views leave out because it cannot be read (a run's files), each naming the run and why.</summary>
    public IReadOnlyList<string> Problems => _problems;

    private readonly Dictionary<(string BatchJob, string Run), string?> _structures = [];

    /// <summary>
    /// The keys of a raw run's JSON lines (of its succeeded attempts) whose values are of more than one kind: those whose
    /// merged structure is JSON (numbers of both kinds merge to DOUBLE, nulls to the other kind). Null when not known.
    /// </summary>
    public IReadOnlyList<string>? MixedKeysOf(string batchJob, string runId) =>
        _structures.TryGetValue((batchJob, runId), out var structure)
            ? structure is not null && JsonNode.Parse(structure) is JsonObject shape
                ? shape.Where(p => p.Value is JsonValue v && v.TryGetValue<string>(out var type) && type == "JSON").Select(p => p.Key).ToList()
                : []
            : null;

    /// <summary>The output columns of one run in view: the key its workload wrote, the name the table gives it.</summary>
    public IReadOnlyList<ResultColumn> ColumnsOf(string batchJob, string runId) =>
        _columnMap.Where(c => c.BatchJob == batchJob && c.Run == runId).Select(c => new ResultColumn(c.Key, c.Column)).ToList();

    private sealed record RunRef(string BatchJob, string Run, string Folder);

    private void DefineResults(string root, List<string> rawRunFolders, Dictionary<string, (string RunFolder, CompactionState State)> compacted, List<string> rawParameters)
    {
        var rawRuns = rawRunFolders.Select(RunOf).ToList();
        var compactedRuns = compacted.Values.Select(r => (Run: RunOf(r.RunFolder), r.State)).ToList();
        var everyParameter = new HashSet<string>(rawParameters, StringComparer.OrdinalIgnoreCase);
        everyParameter.UnionWith(compactedRuns.SelectMany(r => ParametersOf(r.State)));
        var reserved = ResultKeyColumns.Concat(everyParameter).ToList();
        var sources = new List<Source>();

        // Compacted runs: their Parquet holds names from step 1 already; only the renames against every parameter remain.
        var compactedGroups = compactedRuns
            .Select(r =>
            {
                var outputs = OutputsOf(r.State, ParametersOf(r.State)).ToList();
                var names = ResultColumns.Plan(outputs, reserved).ToDictionary(c => c.Key, c => c.Name, StringComparer.Ordinal);
                var keys = r.State.ResultKeys ?? outputs.ToDictionary(o => o, o => o, StringComparer.Ordinal);
                foreach (var output in outputs)
                {
                    _columnMap.Add((r.Run.BatchJob, r.Run.Run, keys.GetValueOrDefault(output, output), names[output]));
                }

                return (r.Run, r.State, Renames: outputs.Where(o => names[o] != o).Select(o => (From: o, To: names[o])).ToList());
            })
            // One read_parquet per schema: it casts every file to its first file's types, so runs typed differently are read apart.
            .GroupBy(r => string.Join('\0', r.Renames.Select(x => x.From + "\u0001" + x.To).Concat(r.State.Results.Schema.Select(c => c.Name + "\u0002" + c.Type))), StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal);
        foreach (var group in compactedGroups)
        {
            var files = group.SelectMany(r => r.State.Results.Files.Select(f => Path.Combine(r.Run.Folder, f))).ToList();
            var renames = group.First().Renames;
            var rename = renames.Count == 0 ? "" : $" RENAME ({string.Join(", ", renames.Select(c => $"{Ident(c.From)} AS {Ident(c.To)}"))})";
            sources.Add(new Source(group.Select(r => r.Run).ToList(), $"SELECT *{rename} FROM read_parquet({List(files)}, union_by_name = true)"));
        }

        if (rawRuns.Count > 0 && HasView("indexes_raw"))
        {
            var runParameters = Execute("SELECT batchjob, run, json_group_structure(params) FROM ledger_raw GROUP BY ALL").Rows
                .ToDictionary(r => ((string)r[0]!, (string)r[1]!), r => OutputColumns(r[2] as string).Select(c => c.Name).ToList());
            var leading = ResultKeyColumns.Concat(rawParameters).Select(c => $"l.{Ident(c)}").ToList();
            List<string> ParametersOfRun(RunRef run) => runParameters.GetValueOrDefault((run.BatchJob, run.Run)) ?? [];
            sources.AddRange(JsonResultSources(rawRuns.Where(r => HasFile(r.Folder, "*.jsonl")).ToList(), leading, reserved, ParametersOfRun));
            foreach (var run in rawRuns.Where(r => HasFile(r.Folder, "*.csv")))
            {
                if (CsvResultSource(run, leading, reserved, ParametersOfRun(run)) is { } source)
                {
                    sources.Add(source);
                }
            }
        }

        UnionByName(
            "results", sources, ResultKeyColumns.Concat(rawParameters).Select(c => $"NULL::{(c is "batchjob" or "namespace" or "run" ? "VARCHAR" : "BIGINT")} AS {Ident(c)}"),
            ResultKeyColumns.Concat(everyParameter.Order(StringComparer.Ordinal)));
        DefineColumnMap();
    }

    /// <summary>JSON lines: one SELECT per group of runs whose keys, names and types are the same (usually one per BatchJob).</summary>
    private IEnumerable<Source> JsonResultSources(List<RunRef> runs, List<string> leading, List<string> reserved, Func<RunRef, List<string>> parametersOf)
    {
        if (runs.Count == 0)
        {
            return [];
        }

        // Every line as JSON text; a line that is not JSON comes back NULL and is left out, as is one that is not an object.
        // Read by each statement that uses it, or once into a table (ViewScope.ReadOnce).
        Run($"CREATE {(_readOnce ? "TEMP TABLE" : "VIEW")} output_objects AS {ObjectsOf(runs)}");
        // The keys' order: that of the run's objects (the least key list of its rows, so the same however rows are read),
        // keys that list lacks after it in ordinal order.
        var structures = Execute($"SELECT o.batchjob, o.run, json_group_structure(o.json), to_json(min(json_keys(o.json))) FROM output_objects o {SucceededJoin} GROUP BY ALL").Rows
            .ToDictionary(r => ((string)r[0]!, (string)r[1]!), r => (Structure: r[2] as string, Order: r[3] is string order ? JsonNode.Parse(order)!.AsArray().Select(k => (string)k!).ToList() : []));
        foreach (var (run, found) in structures)
        {
            _structures[run] = found.Structure;
        }

        var planned = new List<(RunRef Run, List<(string Key, string Name, JsonNode Type)> Columns)>();
        foreach (var run in runs)
        {
            if (!structures.TryGetValue((run.BatchJob, run.Run), out var found))
            {
                continue;
            }

            var types = OutputColumns(found.Structure).ToDictionary(c => c.Name, c => c.Type, StringComparer.Ordinal);
            var columns = InOrder(Plan(run, types.Keys, reserved, parametersOf(run)), found.Order).Select(c => (c.Key, c.Name, types[c.Key])).ToList();
            planned.Add((run, columns));
        }

        var selects = new List<Source>();
        foreach (var group in planned.GroupBy(p => string.Join('\0', p.Columns.Select(c => $"{c.Key}\u0001{c.Name}\u0001{c.Type.ToJsonString()}")), StringComparer.Ordinal))
        {
            var columns = group.First().Columns;
            var groupRuns = group.Select(p => p.Run).ToList();
            if (columns.Count == 0)
            {
                selects.Add(new Source(groupRuns, $"SELECT {string.Join(", ", leading)} FROM ({ObjectsRead(groupRuns)}) o {SucceededJoin}"));
                continue;
            }

            // The structure lists the keys in plan order, so each is taken by position: names that SQL compares
            // without case, or cannot name at all, never have to be spelled.
            var typed = Literal(new JsonObject(columns.Select(c => KeyValuePair.Create(c.Key, (JsonNode?)c.Type.DeepClone()))).ToJsonString());
            var outputs = columns.Select((c, i) => $"struct_extract_at(o.__row, {i + 1}) AS {Ident(c.Name)}");
            selects.Add(new Source(groupRuns, $"""
                SELECT {string.Join(", ", leading.Concat(outputs))}
                FROM (SELECT json_transform(json, {typed}) AS __row, batchjob, run, "index", attempt FROM ({ObjectsRead(groupRuns)})) o
                {SucceededJoin}
                """));
        }

        return selects;
    }

    /// <summary>
    /// CSV: read by <see cref="CsvRows"/>, the very rule the ledger's count follows, and appended into a table of the
    /// run (DuckDB's own reader recovers from a malformed record differently, sometimes dropping the valid rows after
    /// it). Each column is then typed from the run's rows: BIGINT, DOUBLE or BOOLEAN when every value is one, else text.
    /// </summary>
    private Source? CsvResultSource(RunRef run, List<string> leading, List<string> reserved, List<string> runParameters)
    {
        try
        {
            var files = new List<(long Index, long Attempt, string Path, List<string> Keys)>();
            foreach (var attempt in Execute($"SELECT \"index\", attempt FROM succeeded_raw WHERE batchjob = {Literal(run.BatchJob)} AND run = {Literal(run.Run)} ORDER BY ALL").Rows)
            {
                var (index, number) = ((long)attempt[0]!, (long)attempt[1]!);
                var output = Path.Combine(run.Folder, string.Create(CultureInfo.InvariantCulture, $"index={index}"), string.Create(CultureInfo.InvariantCulture, $"attempt={number}"), StoreLayout.OutputFolder);
                foreach (var file in OutputFolder.Scan(output).Files.Where(f => f.Name.EndsWith(".csv", StringComparison.Ordinal)))
                {
                    if (CsvKeys(file.Path) is { Count: > 0 } keys)
                    {
                        files.Add((index, number, file.Path, keys));
                    }
                }
            }

            if (files.Count == 0)
            {
                return null;
            }

            var order = files.SelectMany(f => f.Keys).Distinct(StringComparer.Ordinal).ToList();
            var planned = InOrder(Plan(run, order, reserved, runParameters), order);
            var column = planned.Select((c, i) => (c.Key, i)).ToDictionary(p => p.Key, p => p.i, StringComparer.Ordinal);
            var table = string.Create(CultureInfo.InvariantCulture, $"csv_rows_{_csvTables++}");
            Run($"CREATE TABLE {table} (batchjob VARCHAR, run VARCHAR, \"index\" BIGINT, attempt BIGINT, {string.Join(", ", planned.Select(c => $"{Ident(c.Name)} VARCHAR"))})");
            using (var appender = _connection.CreateAppender(table))
            {
                foreach (var file in files)
                {
                    var positions = file.Keys.Select(k => column[k]).ToArray();
                    using var stream = OutputFolder.OpenRegular(file.Path);
                    foreach (var row in CsvRows.Read(stream, _ => { }).Where(r => r.Error is null))
                    {
                        var values = new string?[planned.Count];
                        for (var i = 0; i < positions.Length; i++)
                        {
                            // An empty field is NULL, as DuckDB reads CSV.
                            values[positions[i]] = row.Fields![i].Length == 0 ? null : row.Fields[i];
                        }

                        var appended = appender.CreateRow().AppendValue(run.BatchJob).AppendValue(run.Run).AppendValue(file.Index).AppendValue(file.Attempt);
                        foreach (var value in values)
                        {
                            appended = value is null ? appended.AppendNullValue() : appended.AppendValue(value);
                        }

                        appended.EndRow();
                    }
                }
            }

            var names = planned.Select(c => c.Name).ToList();
            var types = Execute($"SELECT {string.Join(", ", names.Select(n => CsvTypeOf($"o.{Ident(n)}")))} FROM {table} o").Rows[0].Select(t => (string)t!).ToList();
            var selected = names.Select((n, i) => types[i] == "VARCHAR" ? $"o.{Ident(n)}" : $"CAST(o.{Ident(n)} AS {types[i]}) AS {Ident(n)}");
            return new Source([run], $"SELECT {string.Join(", ", leading.Concat(selected))} FROM {table} o {SucceededJoin}");
        }
        catch (Exception e) when (e is DuckDBException or IOException)
        {
            _problems.Add($"{Label([run])}: its CSV results cannot be read ({FirstLine(e.Message)}); they are left out of results");
            return null;
        }
    }

    private int _csvTables;

    /// <summary>A CSV file's keys: its header's names, a name repeated within the header as NAME_2, NAME_3, …; null when it has no valid header.</summary>
    private static List<string>? CsvKeys(string file)
    {
        using var stream = OutputFolder.OpenRegular(file);
        // The first record is the header, blank or not, as DuckDB skips it.
        var header = CsvRecords.Read(stream).FirstOrDefault();
        return header.Fields is null || header.Error is not null ? null : CsvHeader.Keys(header.Fields);
    }

    private static string CsvTypeOf(string column) =>
        $"""
        CASE WHEN count({column}) = 0 THEN 'VARCHAR'
             WHEN bool_and({column} IS NULL OR try_cast({column} AS BIGINT) IS NOT NULL) THEN 'BIGINT'
             WHEN bool_and({column} IS NULL OR try_cast({column} AS DOUBLE) IS NOT NULL) THEN 'DOUBLE'
             WHEN bool_and({column} IS NULL OR lower({column}) IN ('true', 'false')) THEN 'BOOLEAN'
             ELSE 'VARCHAR' END
        """;

    /// <summary>Columns in the workload's order of keys (<paramref name="order"/>), the others after them in the plan's.</summary>
    private static List<ResultColumn> InOrder(List<ResultColumn> columns, List<string> order)
    {
        var position = order.Select((key, i) => (key, i)).GroupBy(p => p.key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().i, StringComparer.Ordinal);
        return columns.Select((c, i) => (c, i)).OrderBy(p => position.TryGetValue(p.c.Key, out var at) ? at : order.Count + p.i).Select(p => p.c).ToList();
    }

    /// <summary>A run's names: first against its own keys and parameters (what its compaction writes), then against every parameter in view.</summary>
    private List<ResultColumn> Plan(RunRef run, IEnumerable<string> keys, List<string> reserved, List<string> runParameters)
    {
        var own = ResultColumns.Plan(keys, ResultKeyColumns.Concat(runParameters));
        var final = ResultColumns.Plan(own.Select(c => c.Name), reserved).ToDictionary(c => c.Key, c => c.Name, StringComparer.Ordinal);
        var columns = own.Select(c => new ResultColumn(c.Key, final[c.Name])).ToList();
        _columnMap.AddRange(columns.Select(c => (run.BatchJob, run.Run, c.Key, c.Name)));
        return columns;
    }

    /// <summary>Some runs' rows of a view, as one SELECT.</summary>
    private sealed record Source(IReadOnlyList<RunRef> Runs, string Select)
    {
        public string Label => ResultsQueryEngine.Label(Runs);

        /// <summary>Sources are put together in the order of their first run, so columns come in one order however runs are grouped.</summary>
        public (string, string) Order => Runs.Select(r => (r.BatchJob, r.Run)).Min();
    }

    /// <summary>
    /// Defines a view as the union by name of <paramref name="sources"/>, each checked on its own first (one that
    /// cannot be read is left out and named in <see cref="Problems"/>), with every column typed differently by two
    /// sources cast to the type both fit, and the columns in one order: each run's, run after run.
    /// </summary>
    /// <param name="first">Columns that lead, in this order (the keys, then the parameters in ordinal order).</param>
    /// <param name="last">Columns that close the row, in this order (the ledger's own).</param>
    private void UnionByName(string view, List<Source> sources, IEnumerable<string> emptyColumns, IEnumerable<string> first, IEnumerable<string>? last = null)
    {
        var described = new List<(string Select, List<(string Name, string Type)> Columns)>();
        foreach (var source in sources.OrderBy(s => s.Order.Item1, StringComparer.Ordinal).ThenBy(s => s.Order.Item2, StringComparer.Ordinal))
        {
            try
            {
                var columns = Execute($"SELECT column_name, column_type FROM (DESCRIBE {source.Select})").Rows.Select(r => ((string)r[0]!, (string)r[1]!)).ToList();
                described.Add((source.Select, columns));
            }
            catch (DuckDBException e)
            {
                _problems.Add($"{source.Label}: left out of {view} ({FirstLine(e.Message)})");
            }
        }

        if (described.Count == 0)
        {
            Run($"CREATE VIEW {view} AS SELECT {string.Join(", ", emptyColumns)} WHERE false");
            return;
        }

        var fixedTypes = new HashSet<string>(KeyColumns, StringComparer.OrdinalIgnoreCase);
        var unified = described.SelectMany(d => d.Columns).Where(c => !fixedTypes.Contains(c.Name))
            .GroupBy(c => c.Name, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => Unify(g.Select(c => c.Type).Distinct(StringComparer.Ordinal).ToList()), StringComparer.OrdinalIgnoreCase);
        var present = described.SelectMany(d => d.Columns.Select(c => c.Name)).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var leading = first.Where(c => present.Contains(c, StringComparer.OrdinalIgnoreCase)).ToList();
        var closing = (last ?? []).Where(c => present.Contains(c, StringComparer.OrdinalIgnoreCase)).ToList();
        var order = leading.Concat(present.Except(leading.Concat(closing), StringComparer.OrdinalIgnoreCase)).Concat(closing).ToList();
        var selects = described.Select(d =>
        {
            var casts = d.Columns.Where(c => unified.TryGetValue(c.Name, out var type) && type != c.Type)
                .Select(c => $"{(IsNested(c.Type) && unified[c.Name] == "VARCHAR" ? $"to_json({Ident(c.Name)})::VARCHAR" : $"CAST({Ident(c.Name)} AS {unified[c.Name]})")} AS {Ident(c.Name)}")
                .ToList();
            return casts.Count == 0 ? d.Select : $"SELECT * REPLACE ({string.Join(", ", casts)}) FROM ({d.Select})";
        });
        Run($"CREATE VIEW {view} AS SELECT {string.Join(", ", order.Select(Ident))} FROM ({string.Join(" UNION ALL BY NAME ", selects.Select(s => $"({s})"))})");
    }

    /// <summary>The type that every one of <paramref name="types"/> fits: itself when alone, DOUBLE for numbers, else text.</summary>
    private static string Unify(List<string> types) =>
        types.Count == 1 ? types[0]
        : types.All(NumericTypes.Contains) || types.All(t => NumericTypes.Contains(t) || t.StartsWith("DECIMAL", StringComparison.OrdinalIgnoreCase)) ? "DOUBLE"
        : "VARCHAR";

    private static bool IsNested(string type) => type.EndsWith(']') || type.StartsWith("STRUCT", StringComparison.OrdinalIgnoreCase)
        || type.StartsWith("MAP", StringComparison.OrdinalIgnoreCase) || type.StartsWith("UNION", StringComparison.OrdinalIgnoreCase);

    /// <summary><c>result_columns</c>: every run's output columns, the key its workload wrote beside the column's name.</summary>
    private void DefineColumnMap()
    {
        var rows = _columnMap.Distinct().Select(c => $"({Literal(c.BatchJob)}, {Literal(c.Run)}, {Literal(c.Key)}, {Literal(c.Column)})").ToList();
        Run(rows.Count == 0
            ? "CREATE VIEW result_columns AS SELECT NULL::VARCHAR AS batchjob, NULL::VARCHAR AS run, NULL::VARCHAR AS \"key\", NULL::VARCHAR AS column_name WHERE false"
            : $"CREATE VIEW result_columns AS SELECT * FROM (VALUES {string.Join(", ", rows)}) t(batchjob, run, \"key\", column_name)");
    }

    /// <summary>The runs' JSON objects: from the table read once (<see cref="ViewScope.ReadOnce"/>), else from their files.</summary>
    private string ObjectsRead(List<RunRef> runs) =>
        _readOnce
            ? $"SELECT * FROM output_objects WHERE {string.Join(" OR ", runs.Select(r => $"(batchjob = {Literal(r.BatchJob)} AND run = {Literal(r.Run)})"))}"
            : ObjectsOf(runs);

    private string ObjectsOf(List<RunRef> runs)
    {
        var globs = runs.Select(r => Path.Combine(r.Folder, "index=*", "attempt=*", StoreLayout.OutputFolder, "**", "*.jsonl"));
        // DuckDB reads a line of any length (maximum_object_size does not bind read_json_objects): the ledger's limit is applied here.
        return $$"""
            SELECT json, batchjob, run, "index", attempt
            FROM read_json_objects({{List(globs)}}, format = 'newline_delimited', ignore_errors = true, hive_partitioning = true, hive_types_autocast = false)
            WHERE json IS NOT NULL AND json_type(json) = 'OBJECT' AND strlen(json) <= {{OutputInspector.MaxLineBytes}}
            """;
    }

    private const string SucceededJoin = """
        JOIN succeeded_raw l ON l.batchjob = o.batchjob AND l.run = o.run
            AND l."index" = CAST(o."index" AS BIGINT) AND l.attempt = CAST(o.attempt AS BIGINT)
        """;

    private bool HasView(string name) =>
        Execute($"SELECT count(*) FROM duckdb_views() WHERE view_name = {Literal(name)}").Rows[0][0] is 1L;

    private static RunRef RunOf(string runFolder) =>
        new(Path.GetFileName(Path.GetDirectoryName(runFolder)!)["batchjob=".Length..], Path.GetFileName(runFolder)["run=".Length..], runFolder);

    private static string Label(IEnumerable<RunRef> runs) =>
        string.Join(", ", runs.Select(r => string.Create(CultureInfo.InvariantCulture, $"run {r.Run} of {r.BatchJob}")));

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();
}
