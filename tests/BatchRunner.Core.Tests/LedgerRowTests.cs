using System.Text.Json;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;

namespace BatchRunner.Core.Tests;

public class LedgerRowTests
{
    private static readonly string[] Columns =
    [
        "batchjob", "namespace", "run", "index", "attempt", "repeat", "seed", "params", "status", "exit_code", "reason",
        "started_at", "finished_at", "duration_seconds", "backend", "output_files", "output_bytes",
        "output_rows", "output_malformed", "output_note", "point_key", "reused_from",
        "vcpu_seconds", "gib_seconds", "billed_vcpu_seconds", "billed_gib_seconds", "capacity",
    ];

    [Fact]
    public void The_declared_columns_are_the_rows_fields_in_order()
    {
        Assert.Equal(Columns, LedgerColumns.Keys.Select(c => c.Name).Append(LedgerColumns.Params).Concat(LedgerColumns.Outcome.Select(c => c.Name)));
    }

    private static LedgerRow Row(int? exitCode = 3, string? reason = "exit code 3") => new()
    {
        BatchJob = "queue-sweep",
        Namespace = "lab",
        Run = "r0123456789a",
        Index = 41,
        Attempt = 2,
        Repeat = 1,
        Seed = 2_147_483_647,
        Params = JsonDocument.Parse("""{"arrival_rate":0.5,"servers":2,"policy":"fifo"}""").RootElement,
        Status = "failed",
        ExitCode = exitCode,
        Reason = reason,
        StartedAt = new DateTimeOffset(2026, 11, 20, 9, 14, 3, 250, TimeSpan.Zero),
        FinishedAt = new DateTimeOffset(2026, 11, 20, 10, 14, 3, 500, TimeSpan.FromHours(1)),
        DurationSeconds = 0.25,
        Backend = "local",
        OutputFiles = 2,
        OutputBytes = 5_000_000_000,
    };

    [Theory]
    [InlineData(3, "exit code 3")]
    [InlineData(null, null)]
    public void A_row_survives_a_json_round_trip(int? exitCode, string? reason)
    {
        var row = Row(exitCode, reason);

        var back = LedgerRow.FromJson(row.ToJsonUtf8());

        Assert.Equal(row with { Params = default }, back with { Params = default });
        Assert.Equal(row.Params.GetRawText(), back.Params.GetRawText());
    }

    [Fact]
    public void Timestamps_are_written_in_utc_with_microseconds()
    {
        using var json = JsonDocument.Parse(Row().ToJsonUtf8());

        Assert.Equal("2026-11-20T09:14:03.250000Z", json.RootElement.GetProperty("started_at").GetString());
        Assert.Equal("2026-11-20T09:14:03.500000Z", json.RootElement.GetProperty("finished_at").GetString());
    }

    [Fact]
    public void Field_names_are_the_snake_case_sql_columns_in_order()
    {
        using var json = JsonDocument.Parse(Row().ToJsonUtf8());

        Assert.Equal(Columns, json.RootElement.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void Params_are_written_as_a_nested_object_not_a_string()
    {
        using var json = JsonDocument.Parse(Row().ToJsonUtf8());
        var parameters = json.RootElement.GetProperty("params");

        Assert.Equal(JsonValueKind.Object, parameters.ValueKind);
        Assert.Equal(0.5, parameters.GetProperty("arrival_rate").GetDouble());
    }

    [Fact]
    public void Every_column_is_a_reserved_parameter_name_so_no_sweep_can_shadow_one()
    {
        Assert.Equal(Columns.Order(StringComparer.Ordinal), BatchJobParser.ReservedParameterNames.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_null_document_is_rejected()
    {
        Assert.Throws<JsonException>(() => LedgerRow.FromJson("null"u8));
    }
}
