using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRunner.Core.Store;

/// <summary>
/// One attempt of one index: a row of the <c>indexes</c> table. Field names are the SQL column names.
/// <see cref="Params"/> holds the parameter object as JSON text, written as a nested object.
/// </summary>
public sealed record LedgerRow
{
    [JsonPropertyName("batchjob")] public required string BatchJob { get; init; }
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("run")] public required string Run { get; init; }
    [JsonPropertyName("index")] public required int Index { get; init; }
    [JsonPropertyName("attempt")] public required int Attempt { get; init; }
    [JsonPropertyName("repeat")] public required int Repeat { get; init; }
    [JsonPropertyName("seed")] public required long Seed { get; init; }
    [JsonPropertyName("params")] public required JsonElement Params { get; init; }
    [JsonPropertyName("status")] public required string Status { get; init; }
    [JsonPropertyName("exit_code")] public int? ExitCode { get; init; }
    [JsonPropertyName("reason")] public string? Reason { get; init; }
    [JsonPropertyName("started_at"), JsonConverter(typeof(UtcTimestampConverter))] public required DateTimeOffset StartedAt { get; init; }
    [JsonPropertyName("finished_at"), JsonConverter(typeof(UtcTimestampConverter))] public required DateTimeOffset FinishedAt { get; init; }
    [JsonPropertyName("duration_seconds")] public required double DurationSeconds { get; init; }
    [JsonPropertyName("backend")] public required string Backend { get; init; }
    [JsonPropertyName("output_files")] public int OutputFiles { get; init; }
    [JsonPropertyName("output_bytes")] public long OutputBytes { get; init; }

    /// <summary>Result rows the attempt wrote that the <c>results</c> table holds (null when not inspected).</summary>
    [JsonPropertyName("output_rows")] public long? OutputRows { get; init; }

    /// <summary>Lines of its result files that were not a JSON object (or CSV rows that did not parse): left out of <c>results</c>.</summary>
    [JsonPropertyName("output_malformed")] public long? OutputMalformed { get; init; }

    /// <summary>What happened to the output, when something did: no rows, the first malformed line, a failed upload.</summary>
    [JsonPropertyName("output_note")] public string? OutputNote { get; init; }

    /// <summary>The hash of everything that decides this index's result (<see cref="PointKey"/>); null in rows written before it.</summary>
    [JsonPropertyName("point_key")] public string? PointKey { get; init; }

    /// <summary>
    /// Where this succeeded row's result was taken from instead of running it: the earlier attempt of the same point,
    /// as its store path (<c>batchjob=N/run=R/index=I/attempt=A</c>); null for an attempt that ran.
    /// </summary>
    [JsonPropertyName("reused_from")] public string? ReusedFrom { get; init; }

    /// <summary>The vCPUs the spec requests times the attempt's duration: what it used in billable terms on any backend.</summary>
    [JsonPropertyName("vcpu_seconds")] public double? VcpuSeconds { get; init; }

    /// <summary>The memory the spec requests, in GiB, times the attempt's duration.</summary>
    [JsonPropertyName("gib_seconds")] public double? GibSeconds { get; init; }

    /// <summary>What a backend that bills by task size bills for it (Fargate: the task size it ran on, per second, a minute at least); null elsewhere.</summary>
    [JsonPropertyName("billed_vcpu_seconds")] public double? BilledVcpuSeconds { get; init; }

    [JsonPropertyName("billed_gib_seconds")] public double? BilledGibSeconds { get; init; }

    /// <summary>Which price applies where a backend has more than one (Fargate: <c>on-demand</c> or <c>spot</c>); null elsewhere.</summary>
    [JsonPropertyName("capacity")] public string? Capacity { get; init; }

    /// <summary>
    /// The row of one attempt of an index, as every backend writes it; the outcome's details (exit code, reason,
    /// output counts) are added with <c>with</c>.
    /// </summary>
    public static LedgerRow For(
        BatchRunner.Core.Spec.BatchJob job, string runId, BatchRunner.Core.Sweeps.IndexAssignment assignment, int attempt,
        BatchRunner.Core.Runs.AttemptOutcome outcome, DateTimeOffset startedAt, DateTimeOffset finishedAt, string backend) => new()
        {
            BatchJob = job.Metadata.Name,
            Namespace = job.Metadata.Namespace,
            Run = runId,
            Index = assignment.Index,
            Attempt = attempt,
            Repeat = assignment.Repeat,
            Seed = assignment.Seed,
            Params = JsonDocument.Parse(assignment.ParamsJson).RootElement,
            Status = BatchRunner.Core.Runs.PhaseNames.ToLedger(outcome),
            StartedAt = startedAt,
            FinishedAt = finishedAt,
            DurationSeconds = (finishedAt - startedAt).TotalSeconds,
            Backend = backend,
            VcpuSeconds = Math.Round(job.Spec.Resources.MilliCpu / 1000.0 * Math.Max(0, (finishedAt - startedAt).TotalSeconds), 3),
            GibSeconds = Math.Round(job.Spec.Resources.MemoryBytes / (double)(1L << 30) * Math.Max(0, (finishedAt - startedAt).TotalSeconds), 3),
        };

    public byte[] ToJsonUtf8() => JsonSerializer.SerializeToUtf8Bytes(this, BatchRunner.Core.Json.PlainJson.Default.LedgerRow);

    public static LedgerRow FromJson(ReadOnlySpan<byte> utf8) =>
        JsonSerializer.Deserialize(utf8, BatchRunner.Core.Json.PlainJson.Default.LedgerRow) ?? throw new JsonException("ledger row is null");
}

/// <summary>
/// Timestamps as UTC with microseconds and a Z (<c>2026-11-22T13:34:21.616791Z</c>), a form that DuckDB and
/// Athena both read as a timestamp; an offset or 100-ns digits would leave them as text.
/// </summary>
public sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
{
    private const string Format = "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'";

    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DateTimeOffset.Parse(reader.GetString()!, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal);

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.UtcDateTime.ToString(Format, System.Globalization.CultureInfo.InvariantCulture));
}
