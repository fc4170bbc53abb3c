using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;
using DuckDB.NET.Data;

namespace BatchRunner.Athena.Tests.Stub;

/// <summary>A statement's answer as Athena gives it: typed columns, every value as text (null stays null).</summary>
internal sealed record StubResult(string StatementType, IReadOnlyList<(string Name, string Type)> Columns, IReadOnlyList<string?[]> Rows, long BytesScanned);

/// <summary>A query Athena would fail, with its error code (the prefix of the reason) and type.</summary>
internal sealed class StubQueryException(string code, int errorType, string message) : Exception($"{code}: {message}")
{
    public string Code { get; } = code;
    public int ErrorType { get; } = errorType;
}

/// <summary>
/// What the stub Athena does with SQL, with DuckDB over a local copy of S3 (one folder per bucket): external
/// tables from their Hive DDL (columns, Parquet, partition projection's location template), read at
/// query time as Athena does (every file under a partition's location, except names starting with _ or .);
/// views and queries run by DuckDB. It enforces what Athena enforces of injected projection (a query of such a
/// table names its runs) and of the query context (the database exists). Only what BatchRunner's DDL uses.
/// </summary>
internal sealed partial class DuckAthena : IDisposable
{
    private readonly DuckDBConnection _duck;
    private readonly IReadOnlyDictionary<string, string> _buckets;
    private readonly HashSet<string> _databases = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, ExternalTable> _tables = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string> _views = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _gate = new();

    /// <summary>Per table, the files whose column types Athena could not read as the table declares them.</summary>
    private readonly Dictionary<string, List<(string Run, string Error)>> _unreadable = new(StringComparer.OrdinalIgnoreCase);

    public DuckAthena(IReadOnlyDictionary<string, string> buckets)
    {
        _buckets = buckets;
        _duck = new DuckDBConnection("DataSource=:memory:");
        _duck.Open();
    }

    private sealed record ExternalTable(string Name, IReadOnlyList<(string Name, string HiveType)> Columns, string LocationTemplate);

    public StubResult Execute(string sql, string? database)
    {
        lock (_gate)
        {
            var text = sql.Trim().TrimEnd(';').Trim();
            if (CreateDatabase().Match(text) is { Success: true } db)
            {
                _databases.Add(db.Groups["name"].Value);
                return Empty("DDL");
            }

            if (database is null || !_databases.Contains(database))
            {
                throw new StubQueryException("SCHEMA_NOT_FOUND", 1002, $"Schema '{database}' does not exist");
            }

            if (DropTable().Match(text) is { Success: true } drop)
            {
                var name = drop.Groups["name"].Value;
                if (!_tables.Remove(name) && !drop.Groups["ifexists"].Success)
                {
                    throw new StubQueryException("TABLE_NOT_FOUND", 1003, $"Table {database}.{name} does not exist");
                }

                Run($"DROP VIEW IF EXISTS {Quote(name)}");
                return Empty("DDL");
            }

            if (text.StartsWith("CREATE EXTERNAL TABLE", StringComparison.OrdinalIgnoreCase))
            {
                var table = ParseExternalTable(text);
                if (_tables.ContainsKey(table.Name))
                {
                    throw new StubQueryException("ALREADY_EXISTS", 1004, $"Table {database}.{table.Name} already exists");
                }

                _tables[table.Name] = table;
                return Empty("DDL");
            }

            if (CreateView().Match(text) is { Success: true } view)
            {
                RefreshTables();
                _views[view.Groups["name"].Value] = view.Groups["body"].Value;
                RunChecked(text);
                return Empty("DDL");
            }

            if (!text.StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) && !text.StartsWith("WITH", StringComparison.OrdinalIgnoreCase))
            {
                throw new StubQueryException("NOT_SUPPORTED", 1001, "the stub runs CREATE DATABASE, CREATE EXTERNAL TABLE, DROP TABLE, CREATE OR REPLACE VIEW and queries");
            }

            var expanded = Expand(text);
            foreach (var table in _tables.Values.Where(t => Mentions(text, t.Name)))
            {
                if (!RunPredicate().IsMatch(text))
                {
                    throw new StubQueryException("CONSTRAINT_VIOLATION", 1005,
                        "For the injected projected partition column run, the WHERE clause must contain only static equality conditions, and at least one such condition must be present.");
                }
            }

            RefreshTables();
            foreach (var (table, files) in _unreadable.Where(t => Mentions(expanded, t.Key)))
            {
                var named = RunsNamed(expanded, table);
                if (files.FirstOrDefault(f => named.Contains(f.Run)) is { Error: not null } bad)
                {
                    throw new StubQueryException("HIVE_BAD_DATA", 1008, bad.Error);
                }
            }

            var bytes = BytesScanned(expanded);
            return Query(text, bytes);
        }
    }

    public void Dispose() => _duck.Dispose();

    /// <summary>The query with the text of the views it names (one level is all BatchRunner's views use).</summary>
    private string Expand(string text) =>
        text + string.Concat(_views.Where(v => Mentions(text, v.Key)).Select(v => "\n" + v.Value));

    /// <summary>Bytes of the files of each table the query reads, in the runs it names (partition pruning).</summary>
    private long BytesScanned(string expanded) =>
        _tables.Values.Where(t => Mentions(expanded, t.Name))
            .Sum(t =>
            {
                var named = RunsNamed(expanded, t.Name);
                return Files(t).Where(f => named.Contains(f.Run)).Sum(f => new FileInfo(f.Path).Length);
            });

    /// <summary>
    /// The runs a query names for one table: the literals of <c>FROM table WHERE run = '…'</c> or <c>IN (…)</c>,
    /// as BatchRunner's views and queries write them; any literal of the query when it has no such clause.
    /// </summary>
    private static HashSet<string> RunsNamed(string sql, string table)
    {
        var clause = new Regex(
            $"(?<![A-Za-z0-9_])\"?{Regex.Escape(table)}\"?\\s+WHERE\\s+\"?run\"?\\s*(=\\s*'(?<one>[^']*)'|IN\\s*\\((?<many>[^)]*)\\))",
            RegexOptions.IgnoreCase);
        var matches = clause.Matches(sql);
        var source = matches.Count == 0 ? sql : string.Join(" ", matches.Select(m => m.Groups["one"].Success ? $"'{m.Groups["one"].Value}'" : m.Groups["many"].Value));
        return Literal().Matches(source).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Each external table becomes a DuckDB view over the files there now.</summary>
    private void RefreshTables()
    {
        foreach (var table in _tables.Values)
        {
            var files = Files(table).ToList();
            var declared = table.Columns.Select(c => (c.Name, Type: DuckType(c.HiveType))).ToList();
            string body;
            if (files.Count == 0)
            {
                body = "SELECT " + string.Join(", ", declared.Select(c => $"CAST(NULL AS {c.Type}) AS {Quote(c.Name)}")) +
                    ", CAST(NULL AS VARCHAR) AS \"run\" WHERE false";
            }
            else
            {
                var list = "[" + string.Join(", ", files.Select(f => Lit(f.Path))) + "]";
                var runOf = $"regexp_extract(filename, {Lit(RunPattern(table))}, 1) AS \"run\"";
                _unreadable[table.Name] = Incompatible(table, files);
                var source = $"read_parquet({list}, filename = true, union_by_name = true)";
                var present = Query($"SELECT column_name FROM (DESCRIBE SELECT * FROM {source})", 0).Rows
                    .Select(r => r[0]!).ToHashSet(StringComparer.OrdinalIgnoreCase);
                // Athena reads Parquet columns by name; a column a file lacks is null.
                var select = declared.Select(c => present.Contains(c.Name)
                    ? $"CAST({Quote(c.Name)} AS {c.Type}) AS {Quote(c.Name)}"
                    : $"CAST(NULL AS {c.Type}) AS {Quote(c.Name)}");
                body = $"SELECT {string.Join(", ", select)}, {runOf} FROM {source}";
            }

            Run($"CREATE OR REPLACE VIEW {Quote(table.Name)} AS {body}");
        }
    }

    /// <summary>
    /// Files with a column Athena would refuse: it reads a Parquet column as its own type, an integer as a wider
    /// integer, a float as a double, and nothing else (HIVE_BAD_DATA).
    /// </summary>
    private List<(string Run, string Error)> Incompatible(ExternalTable table, List<(string Path, string Run)> files)
    {
        var declared = table.Columns.ToDictionary(c => c.Name, c => c.HiveType.ToLowerInvariant(), StringComparer.OrdinalIgnoreCase);
        var bad = new List<(string, string)>();
        foreach (var (path, run) in files)
        {
            foreach (var row in Query($"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet({Lit(path)}))", 0).Rows)
            {
                if (!declared.TryGetValue(row[0]!, out var want))
                {
                    continue;
                }

                var have = row[1]!.ToUpperInvariant();
                var readable = want switch
                {
                    "bigint" => have is "BIGINT" or "INTEGER" or "SMALLINT" or "TINYINT",
                    "double" => have is "DOUBLE" or "FLOAT",
                    "string" => have == "VARCHAR",
                    "boolean" => have == "BOOLEAN",
                    "timestamp" => have.StartsWith("TIMESTAMP", StringComparison.Ordinal),
                    _ => true,
                };
                if (!readable)
                {
                    bad.Add((run, $"Field {row[0]}'s type {have} in parquet file {path} is incompatible with type {want} defined in table schema"));
                }
            }
        }

        return bad;
    }

    private IEnumerable<(string Path, string Run)> Files(ExternalTable table)
    {
        var template = LocalPath(table.LocationTemplate);
        var at = template.IndexOf("${run}", StringComparison.Ordinal);
        var parent = Path.GetDirectoryName(template[..at])!;
        if (!Directory.Exists(parent))
        {
            yield break;
        }

        var pattern = new Regex("^" + Regex.Escape(template[..at]) + "(?<run>[^/]+)" + Regex.Escape(template[(at + 6)..]));
        foreach (var file in Directory.EnumerateFiles(parent, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(file);
            if (name.StartsWith('_') || name.StartsWith('.') || pattern.Match(file) is not { Success: true } match)
            {
                continue;
            }

            yield return (file, match.Groups["run"].Value);
        }
    }

    private string RunPattern(ExternalTable table)
    {
        var template = LocalPath(table.LocationTemplate);
        var at = template.IndexOf("${run}", StringComparison.Ordinal);
        return Regex.Escape(template[..at]) + "([^/]+)";
    }

    private string LocalPath(string s3)
    {
        var match = S3Uri().Match(s3);
        if (!match.Success || !_buckets.TryGetValue(match.Groups["bucket"].Value, out var root))
        {
            throw new StubQueryException("HIVE_METASTORE_ERROR", 1006, $"no such bucket in {s3}");
        }

        return Path.Combine(root, match.Groups["key"].Value);
    }

    private static ExternalTable ParseExternalTable(string text)
    {
        var match = ExternalTableDdl().Match(text);
        if (!match.Success)
        {
            throw new StubQueryException("SYNTAX_ERROR", 1001, "line 1:1: mismatched input in CREATE EXTERNAL TABLE");
        }

        var columns = SplitTopLevel(match.Groups["columns"].Value).Select(c =>
        {
            var column = ColumnDefinition().Match(c.Trim());
            if (!column.Success)
            {
                throw new StubQueryException("SYNTAX_ERROR", 1001, $"bad column definition '{c.Trim()}'");
            }

            return (column.Groups["name"].Value, column.Groups["type"].Value.Trim());
        }).ToList();
        var properties = Property().Matches(match.Groups["properties"].Value).ToDictionary(m => m.Groups["key"].Value, m => m.Groups["value"].Value);
        var partitions = match.Groups["partitions"].Value.Trim();
        if (partitions != "`run` string" || properties.GetValueOrDefault("projection.enabled") != "true" ||
            properties.GetValueOrDefault("projection.run.type") != "injected" ||
            properties.GetValueOrDefault("storage.location.template") is not { } template || !template.Contains("${run}", StringComparison.Ordinal) ||
            !template.StartsWith(match.Groups["location"].Value, StringComparison.Ordinal))
        {
            throw new StubQueryException("HIVE_INVALID_METADATA", 1007,
                "the stub reads tables partitioned by run with injected projection and a storage.location.template under LOCATION");
        }

        if (!match.Groups["format"].Value.Equals("STORED AS PARQUET", StringComparison.OrdinalIgnoreCase))
        {
            throw new StubQueryException("NOT_SUPPORTED", 1001, $"the stub reads Parquet tables only, not {match.Groups["format"].Value}");
        }

        return new ExternalTable(match.Groups["name"].Value, columns, properties["storage.location.template"]);
    }

    private static List<string> SplitTopLevel(string text)
    {
        var parts = new List<string>();
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '<':
                    depth++;
                    break;
                case '>':
                    depth--;
                    break;
                case ',' when depth == 0:
                    parts.Add(text[start..i]);
                    start = i + 1;
                    break;
            }
        }

        parts.Add(text[start..]);
        return parts.Where(p => p.Trim().Length > 0).ToList();
    }

    private static string DuckType(string hive)
    {
        hive = hive.Trim();
        if (hive.StartsWith("struct<", StringComparison.OrdinalIgnoreCase))
        {
            var fields = SplitTopLevel(hive[7..^1]).Select(f =>
            {
                var colon = f.IndexOf(':', StringComparison.Ordinal);
                return $"{Quote(f[..colon].Trim().Trim('`'))} {DuckType(f[(colon + 1)..])}";
            });
            return $"STRUCT({string.Join(", ", fields)})";
        }

        return hive.ToLowerInvariant() switch
        {
            "string" => "VARCHAR",
            "bigint" => "BIGINT",
            "int" => "INTEGER",
            "double" => "DOUBLE",
            "boolean" => "BOOLEAN",
            "timestamp" => "TIMESTAMP",
            _ => throw new StubQueryException("NOT_SUPPORTED", 1001, $"Unknown type '{hive}'"),
        };
    }

    private StubResult Query(string sql, long bytes)
    {
        try
        {
            using var command = _duck.CreateCommand();
            command.CommandText = sql;
            using var reader = command.ExecuteReader();
            var columns = Enumerable.Range(0, reader.FieldCount).Select(i => (reader.GetName(i), AthenaType(reader.GetDataTypeName(i)))).ToList();
            var rows = new List<string?[]>();
            while (reader.Read())
            {
                var row = new string?[reader.FieldCount];
                for (var i = 0; i < row.Length; i++)
                {
                    row[i] = reader.IsDBNull(i) ? null : Text(reader.GetValue(i));
                }

                rows.Add(row);
            }

            return new StubResult("DML", columns, rows, bytes);
        }
        catch (DuckDBException e)
        {
            throw Athenaish(e);
        }
    }

    private void RunChecked(string sql)
    {
        try
        {
            Run(sql);
        }
        catch (DuckDBException e)
        {
            throw Athenaish(e);
        }
    }

    /// <summary>DuckDB's error as Athena words its classes of error.</summary>
    private static StubQueryException Athenaish(DuckDBException e)
    {
        var message = e.Message;
        return message.Contains("Parser Error", StringComparison.Ordinal) ? new StubQueryException("SYNTAX_ERROR", 1001, $"line 1:1: {message}")
            : message.Contains("Catalog Error", StringComparison.Ordinal) ? new StubQueryException("TABLE_NOT_FOUND", 1003, message)
            : message.Contains("Binder Error", StringComparison.Ordinal) ? new StubQueryException("COLUMN_NOT_FOUND", 1003, message)
            : new StubQueryException("GENERIC_USER_ERROR", 1000, message);
    }

    private void Run(string sql)
    {
        using var command = _duck.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static StubResult Empty(string type) => new(type, [], [], 0);

    /// <summary>DuckDB's type name as Athena names the type of a result column.</summary>
    private static string AthenaType(string duck) => duck.ToUpperInvariant() switch
    {
        "VARCHAR" => "varchar",
        "BIGINT" or "HUGEINT" => "bigint",
        "INTEGER" => "integer",
        "SMALLINT" => "smallint",
        "TINYINT" => "tinyint",
        "DOUBLE" => "double",
        "FLOAT" => "real",
        "BOOLEAN" => "boolean",
        "TIMESTAMP" => "timestamp",
        "DATE" => "date",
        var d when d.StartsWith("DECIMAL", StringComparison.Ordinal) => "decimal",
        _ => "varchar",
    };

    /// <summary>A value as Athena prints it; timestamps at millisecond precision, as Athena's timestamp(3).</summary>
    private static string Text(object value) => value switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        DateTime t => t.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture),
        BigInteger n => n.ToString(CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static bool Mentions(string sql, string name) =>
        Regex.IsMatch(sql, $"(?<![A-Za-z0-9_]){Regex.Escape(name)}(?![A-Za-z0-9_])", RegexOptions.IgnoreCase);

    private static string Quote(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string Lit(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    [GeneratedRegex(@"^CREATE DATABASE (IF NOT EXISTS )?`?(?<name>[A-Za-z0-9_]+)`?$", RegexOptions.IgnoreCase)]
    private static partial Regex CreateDatabase();

    [GeneratedRegex(@"^DROP TABLE (?<ifexists>IF EXISTS )?`?(?<name>[A-Za-z0-9_]+)`?$", RegexOptions.IgnoreCase)]
    private static partial Regex DropTable();

    [GeneratedRegex(@"^CREATE OR REPLACE VIEW ""?(?<name>[A-Za-z0-9_]+)""? AS\s(?<body>.*)$", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex CreateView();

    [GeneratedRegex(@"^CREATE EXTERNAL TABLE `(?<name>[A-Za-z0-9_]+)` \((?<columns>.*)\)\s*PARTITIONED BY \((?<partitions>[^)]*)\)\s*(?<format>ROW FORMAT SERDE '(?<serde>[^']+)'|STORED AS PARQUET)\s*LOCATION '(?<location>[^']+)'\s*TBLPROPERTIES \((?<properties>.*)\)$", RegexOptions.Singleline)]
    private static partial Regex ExternalTableDdl();

    [GeneratedRegex(@"^`(?<name>[^`]+)` (?<type>.+)$", RegexOptions.Singleline)]
    private static partial Regex ColumnDefinition();

    [GeneratedRegex(@"'(?<key>[^']+)'\s*=\s*'(?<value>[^']*)'")]
    private static partial Regex Property();

    [GeneratedRegex(@"""?\brun\b""?\s*(=\s*'|IN\s*\(\s*')", RegexOptions.IgnoreCase)]
    private static partial Regex RunPredicate();

    [GeneratedRegex(@"'([^']*)'")]
    private static partial Regex Literal();

    [GeneratedRegex(@"^s3://(?<bucket>[^/]+)/(?<key>.*)$")]
    private static partial Regex S3Uri();
}
