using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;

namespace BatchRunner.Aws.Batch;

/// <summary>
/// Where a run stands in AWS Batch, kept by the door that runs it (the BatchJob's <c>status.awsBatch</c>, the CLI's
/// state file) and handed back on the next call. It stays small whatever the sweep's size: the arrays still open,
/// and counters for those that finished. Everything in it can be found again in AWS Batch (job names are
/// deterministic), so a lost or stale copy costs lookups, never a second submission.
/// </summary>
public sealed class AwsBatchRunState
{
    /// <summary>The state's source-generated metadata, for <see cref="JsonSerializer"/> calls that must stay AOT-safe.</summary>
    public static JsonTypeInfo<AwsBatchRunState> TypeInfo => AwsBatchRunStateJsonContext.Default.AwsBatchRunState;

    /// <summary>The run these arrays belong to.</summary>
    public string? RunId { get; set; }

    /// <summary>The queue the run was submitted to (its first submission decides; Spot or not).</summary>
    public string? JobQueue { get; set; }

    /// <summary>The job definition's ARN.</summary>
    public string? JobDefinition { get; set; }

    /// <summary>Where the wrapper reads the run's spec.</summary>
    public string? SpecLocation { get; set; }

    /// <summary>Indexes per array (window), fixed at the first submission so that array names never shift.</summary>
    public int WindowSize { get; set; }

    /// <summary>The first index not submitted yet; arrays are submitted in index order.</summary>
    public int NextIndex { get; set; }

    /// <summary>Arrays (or single jobs) submitted and not finished.</summary>
    public List<ArrayRecord> Arrays { get; set; } = [];

    /// <summary>Indexes that succeeded in finished arrays.</summary>
    public int DoneSucceeded { get; set; }

    /// <summary>Indexes that failed (no attempt left) in finished arrays.</summary>
    public int DoneFailed { get; set; }

    /// <summary>
    /// Those failed indexes in range notation (<c>1,3-5</c>): the first <see cref="MaxFailedIndexesText"/> characters
    /// of them, so the state stays small whatever the run's size (<see cref="DoneFailed"/> counts them all).
    /// </summary>
    public string? FailedIndexes { get; set; }

    /// <summary>True once <see cref="FailedIndexes"/> lists only the first failed indexes.</summary>
    public bool FailedIndexesTruncated { get; set; }

    /// <summary>The longest list of failed indexes the state keeps (it travels in a BatchJob's status).</summary>
    public const int MaxFailedIndexesText = 32 * 1024;

    /// <summary>The first few failures with AWS Batch's reason and the container's exit code.</summary>
    public List<IndexFailure> Failures { get; set; } = [];

    public DateTimeOffset? StartTime { get; set; }

    public DateTimeOffset? CompletionTime { get; set; }

    /// <summary>Reruns of the run taken so far (each gave chosen indexes new attempts).</summary>
    public int Reruns { get; set; }

    /// <summary>The indexes of the latest rerun, in range notation; null before any.</summary>
    public string? RerunIndexes { get; set; }

    /// <summary>How many of <see cref="RerunIndexes"/> (in order) are submitted.</summary>
    public int RerunNext { get; set; }

    /// <summary>
    /// The first index of the run's part this backend runs, when its queue split the run across backends (the part
    /// runs to <see cref="PartEnd"/>); null: the whole run.
    /// </summary>
    public int? PartStart { get; set; }

    /// <summary>One past the last index of the run's part; null: the whole run.</summary>
    public int? PartEnd { get; set; }

    /// <summary>Set once the run ended for a reason of its own (Cancelled, DeadlineExceeded): nothing more is submitted.</summary>
    public string? Outcome { get; set; }

    public AwsBatchRunState Clone() => JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(this, TypeInfo), TypeInfo)!;

    public JsonElement ToJson() => JsonSerializer.SerializeToElement(this, TypeInfo);

    public static AwsBatchRunState? FromJson(JsonElement? element) =>
        element is { ValueKind: JsonValueKind.Object } value ? value.Deserialize(TypeInfo) : null;
}

/// <summary>One submitted array (or single job, <see cref="Size"/> 1) and what was last seen of its children.</summary>
public sealed class ArrayRecord
{
    public string JobId { get; set; } = "";

    public string JobName { get; set; } = "";

    /// <summary>Its first index: child <c>i</c> runs index <c>Start + i</c> (<c>BATCHRUNNER_INDEX_OFFSET</c>).</summary>
    public int Start { get; set; }

    /// <summary>A rerun's array: the indexes its children run, child <c>i</c> the <c>i</c>-th (<c>BATCHRUNNER_INDEXES</c>).</summary>
    public string? Indexes { get; set; }

    /// <summary>The indexes its children run, in child order.</summary>
    public IReadOnlyList<int> ChildIndexes() => Indexes is { } listed ? IndexRanges.Parse(listed) : Enumerable.Range(Start, Size).ToList();

    public int Size { get; set; }

    public DateTimeOffset SubmittedAt { get; set; }

    /// <summary>The parent's last status (SUBMITTED … SUCCEEDED, FAILED).</summary>
    public string? Status { get; set; }

    public int Succeeded { get; set; }

    public int Failed { get; set; }

    /// <summary>Children STARTING or RUNNING.</summary>
    public int Running { get; set; }
}

/// <summary>A failed index: AWS Batch's reason (<c>statusReason</c>, the container's reason) and the exit code.</summary>
public sealed record IndexFailure(int Index, string Reason, int? ExitCode);

/// <summary>Source-generated JSON metadata of <see cref="AwsBatchRunState"/>: camelCase, nulls left out, Kubernetes times.</summary>
[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(KubernetesTimeConverter)])]
[JsonSerializable(typeof(AwsBatchRunState))]
public sealed partial class AwsBatchRunStateJsonContext : JsonSerializerContext;
