namespace BatchRunner.Core.Store;

/// <summary>The type a ledger column has in every engine's terms (DuckDB, Parquet, Athena).</summary>
public enum LedgerType
{
    Text,
    Integer,
    Real,
    Timestamp,
}

/// <summary>
/// The columns of the <c>indexes</c> table, declared once: the keys before the parameters, the outcome after them.
/// <see cref="LedgerRow"/> writes them (a test holds the two together), the query engines and Athena's DDL read them,
/// and a sweep parameter may not take one of their names.
/// </summary>
public static class LedgerColumns
{
    public static IReadOnlyList<(string Name, LedgerType Type)> Keys { get; } =
    [
        ("batchjob", LedgerType.Text), ("namespace", LedgerType.Text), ("run", LedgerType.Text),
        ("index", LedgerType.Integer), ("attempt", LedgerType.Integer), ("repeat", LedgerType.Integer), ("seed", LedgerType.Integer),
    ];

    public static IReadOnlyList<(string Name, LedgerType Type)> Outcome { get; } =
    [
        ("status", LedgerType.Text), ("exit_code", LedgerType.Integer), ("reason", LedgerType.Text),
        ("started_at", LedgerType.Timestamp), ("finished_at", LedgerType.Timestamp), ("duration_seconds", LedgerType.Real),
        ("backend", LedgerType.Text), ("output_files", LedgerType.Integer), ("output_bytes", LedgerType.Integer),
        ("output_rows", LedgerType.Integer), ("output_malformed", LedgerType.Integer), ("output_note", LedgerType.Text),
        ("point_key", LedgerType.Text), ("reused_from", LedgerType.Text),
        ("vcpu_seconds", LedgerType.Real), ("gib_seconds", LedgerType.Real),
        ("billed_vcpu_seconds", LedgerType.Real), ("billed_gib_seconds", LedgerType.Real), ("capacity", LedgerType.Text),
    ];

    /// <summary>The raw row's parameter object (the tables spread it into a column per parameter).</summary>
    public const string Params = "params";

    /// <summary>Every column name of the ledger, the parameter object's included; no sweep parameter may take one.</summary>
    public static IReadOnlySet<string> Names { get; } =
        new HashSet<string>(Keys.Concat(Outcome).Select(c => c.Name).Append(Params), StringComparer.OrdinalIgnoreCase);
}
