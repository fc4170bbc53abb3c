using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Status;
using k8s;
using k8s.Models;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>
/// The status and the merge patches are written from source-generated metadata and by hand (Native AOT); what
/// reaches the API server must stay byte for byte what reflection-based serialization wrote before.
/// </summary>
public sealed class SourceGeneratedJsonTests
{
    /// <summary>The options BatchJobStatus had before source generation, reflection-based.</summary>
    private static readonly JsonSerializerOptions ReflectionJson = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(), new KubernetesTimeConverter() },
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    };

    private static readonly DateTimeOffset Started = new(2026, 11, 22, 13, 57, 57, 123, TimeSpan.FromHours(2));

    public static TheoryData<string> Statuses() => new(Samples.Keys);

    private static readonly Dictionary<string, BatchJobStatus> Samples = new()
    {
        ["empty"] = new BatchJobStatus(),
        ["running"] = new BatchJobStatus
        {
            Phase = RunPhase.Running,
            ObservedGeneration = 3,
            RunId = "r-7f3a",
            JobName = "sweep-7f3a",
            Total = 100_000,
            Succeeded = 12,
            Failed = 0,
            Active = 8,
            StartTime = Started,
            Conditions =
            [
                new Condition(Conditions.Valid, "True", Conditions.Reasons.SpecValid, "spec is valid", Started, 3),
                new Condition(Conditions.Dispatched, "True", Conditions.Reasons.JobCreated, "Job sweep-7f3a created", Started.AddMinutes(1), null),
            ],
        },
        ["failed with awkward text"] = new BatchJobStatus
        {
            Phase = RunPhase.Failed,
            ObservedGeneration = long.MaxValue,
            RunId = "r",
            Total = 5,
            Succeeded = 2,
            Failed = 3,
            FailedIndexes = "1,3-4",
            StartTime = Started,
            CompletionTime = Started.AddHours(30).AddTicks(9_999_999),
            Conditions =
            [
                new Condition(Conditions.Failed, "True", "BackoffLimitExceeded",
                    "exit 1: \"quoted\" <b>&amp;</b> 'single' back\\slash\nnew line\ttab Zürich 東京 🚀 \u0001 \u2028", Started, 1),
            ],
        },
        ["aws batch"] = new BatchJobStatus
        {
            Phase = RunPhase.Cancelled,
            BackendState = JsonDocument.Parse("""{"runId":"r","arrays":[{"jobId":"j-1","size":10000,"submittedAt":"2026-11-22T13:57:57Z"}],"nextIndex":1.5e3,"note":"<\u00e9>"}""").RootElement.Clone(),
        },
        ["aws batch, written by an older controller"] = new BatchJobStatus
        {
            Phase = RunPhase.Running,
            LegacyAwsBatch = JsonDocument.Parse("""{"runId":"r","nextIndex":3}""").RootElement.Clone(),
        },
    };

    [Theory]
    [MemberData(nameof(Statuses))]
    public void A_status_is_written_as_reflection_wrote_it(string sample)
    {
        var status = Samples[sample];
        var expected = JsonSerializer.Serialize(status, ReflectionJson);

        Assert.Equal(expected, JsonSerializer.Serialize(status, BatchJobStatus.TypeInfo));
    }

    [Theory]
    [MemberData(nameof(Statuses))]
    public void A_status_survives_a_round_trip_through_its_json(string sample)
    {
        var status = Samples[sample];
        var element = JsonSerializer.SerializeToElement(status, BatchJobStatus.TypeInfo);

        var back = BatchJobStatus.FromJson(element);

        Assert.Equal(JsonSerializer.Serialize(status, ReflectionJson), JsonSerializer.Serialize(back, ReflectionJson));
        Assert.Equal(status.Phase, back.Phase);
        Assert.Equal(status.Conditions.Select(c => c.Type), back.Conditions.Select(c => c.Type));
    }

    // As the API server hands a status back: other casing, a phase as a number, numbers as strings, times with an
    // offset, unknown members; or with members left out, which must keep their defaults.
    [Theory]
    [InlineData("""
        {"PHASE":2,"observedGeneration":"7","runId":"r","total":4,"succeeded":4,"startTime":"2026-11-22T15:57:57+02:00",
         "completionTime":"2026-11-22T14:00:00.5Z","conditions":[{"type":"Complete","status":"True","reason":"AllIndexesSucceeded",
         "message":"all 4 indexes succeeded","lastTransitionTime":"2026-11-22T14:00:00Z","observedGeneration":7}],"extra":{"a":1}}
        """)]
    [InlineData("""{"phase":"Running","awsBatch":{"runId":"r","arrays":[]}}""")]
    [InlineData("""{}""")]
    public void A_status_is_read_as_reflection_read_it(string stored)
    {
        using var document = JsonDocument.Parse(stored);

        var read = BatchJobStatus.FromJson(document.RootElement);

        var expected = document.RootElement.Deserialize<BatchJobStatus>(ReflectionJson)!;
        Assert.Equal(expected.Phase, read.Phase);
        Assert.NotNull(read.Conditions);
        Assert.Equal(expected.Conditions.Count, read.Conditions.Count);
        Assert.Equal(JsonSerializer.Serialize(expected, ReflectionJson), JsonSerializer.Serialize(read, ReflectionJson));
    }

    [Fact]
    public void Not_an_object_reads_as_an_empty_status()
    {
        using var array = JsonDocument.Parse("[]");

        Assert.Null(BatchJobStatus.FromJson(null).Phase);
        Assert.Null(BatchJobStatus.FromJson(array.RootElement).Phase);
    }

    public static TheoryData<string[], string?> FinalizerPatches() => new()
    {
        { ["batchrunner.io/cleanup"], "12345" },
        { ["batchrunner.io/cleanup", "other.io/\"odd\" <one>"], null },
        { [], "9" },
    };

    [Theory]
    [MemberData(nameof(FinalizerPatches))]
    public void A_finalizer_patch_is_sent_as_before(string[] finalizers, string? resourceVersion)
    {
        IReadOnlyList<string> list = finalizers;
        var before = Wire(new { metadata = new { finalizers = list, resourceVersion } });

        Assert.Equal(before, Wire(MergePatches.Finalizers(list, resourceVersion)));
    }

    [Theory]
    [MemberData(nameof(Statuses))]
    public void A_status_patch_is_sent_as_before(string sample)
    {
        var status = Samples[sample];
        var before = Wire(new { status = JsonSerializer.SerializeToElement(status, ReflectionJson) });

        Assert.Equal(before, Wire(MergePatches.Status(status)));
    }

    [Theory]
    [InlineData(4, 3600L)]
    [InlineData(0, null)]
    [InlineData(int.MaxValue, long.MaxValue)]
    public void A_job_patch_is_sent_as_before_and_leaves_out_an_absent_deadline(int parallelism, long? activeDeadlineSeconds)
    {
        var before = Wire(new { spec = new { parallelism, activeDeadlineSeconds } });

        Assert.Equal(before, Wire(MergePatches.JobSpec(parallelism, activeDeadlineSeconds)));
        Assert.Equal(activeDeadlineSeconds is null, !before.Contains("activeDeadlineSeconds", StringComparison.Ordinal));
    }

    /// <summary>The request body KubernetesClient makes of a merge patch with this content.</summary>
    private static string Wire(object content) => KubernetesJson.Serialize(new V1Patch(content, V1Patch.PatchType.MergePatch));
}
