namespace BatchRunner.Aws.Athena;

/// <summary>The column types BatchRunner declares in Athena; anything richer is kept as text.</summary>
public enum AthenaType
{
    Boolean,
    Bigint,
    Double,
    Timestamp,
    String,
}

/// <summary>A column of a run's table: its name as written and its type.</summary>
public sealed record AthenaColumn(string Name, AthenaType Type);

/// <summary>
/// What Athena needs to know of one compacted run: its BatchJob, its id, the types of its parameters and of the
/// columns its workload wrote (the compacted <c>results</c> files' columns that are neither keys nor parameters).
/// </summary>
public sealed record AthenaRunSchema(
    string BatchJob,
    string RunId,
    IReadOnlyList<AthenaColumn> Parameters,
    IReadOnlyList<AthenaColumn> Outputs);

/// <summary>Every run Athena should see, and where the store is (<c>s3://bucket/prefix</c>).</summary>
public sealed record AthenaCatalog(string StoreUri, IReadOnlyList<AthenaRunSchema> Runs);

/// <summary>Type names and the widening rules shared by the DDL and the views.</summary>
public static class AthenaTypes
{
    /// <summary>The Hive name, for <c>CREATE EXTERNAL TABLE</c>.</summary>
    public static string HiveName(this AthenaType type) => type switch
    {
        AthenaType.Boolean => "boolean",
        AthenaType.Bigint => "bigint",
        AthenaType.Double => "double",
        AthenaType.Timestamp => "timestamp",
        _ => "string",
    };

    /// <summary>The SQL name, for views and casts (Trino's, which DuckDB reads too).</summary>
    public static string SqlName(this AthenaType type) => type switch
    {
        AthenaType.Boolean => "boolean",
        AthenaType.Bigint => "bigint",
        AthenaType.Double => "double",
        AthenaType.Timestamp => "timestamp",
        _ => "varchar",
    };

    /// <summary>
    /// One type for a column two runs typed differently: integers widen to double; any other mix is text, which
    /// every value can be cast to.
    /// </summary>
    public static AthenaType Widen(AthenaType a, AthenaType b) =>
        a == b ? a
        : (a, b) is (AthenaType.Bigint, AthenaType.Double) or (AthenaType.Double, AthenaType.Bigint) ? AthenaType.Double
        : AthenaType.String;

    /// <summary>
    /// The type of a DuckDB column (from <c>DESCRIBE</c>), as the compacted Parquet files and the ledger's JSON
    /// carry it; nested and unusual types become text.
    /// </summary>
    public static AthenaType FromDuckDb(string duckDbType)
    {
        var type = duckDbType.Trim().ToUpperInvariant();
        if (type.StartsWith("DECIMAL", StringComparison.Ordinal))
        {
            return AthenaType.Double;
        }

        return type switch
        {
            "BOOLEAN" => AthenaType.Boolean,
            "TINYINT" or "SMALLINT" or "INTEGER" or "BIGINT" or "UTINYINT" or "USMALLINT" or "UINTEGER" => AthenaType.Bigint,
            "FLOAT" or "DOUBLE" or "REAL" => AthenaType.Double,
            "TIMESTAMP" or "TIMESTAMP WITH TIME ZONE" or "TIMESTAMP_MS" or "TIMESTAMP_NS" or "TIMESTAMP_S" => AthenaType.Timestamp,
            _ => AthenaType.String,
        };
    }
}
