using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BatchRunner.Aws.Batch;
using BatchRunner.Backends;
using BatchRunner.Kubernetes.Status;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>
/// The run state is kept in a BatchJob's status and in the CLI's state file: written from source-generated metadata
/// (Native AOT), it must stay byte for byte what the reflection-based options wrote, and read back whole.
/// </summary>
public sealed class AwsBatchRunStateJsonTests
{
    /// <summary>What the state's JSON options were before source generation, reflection-based.</summary>
    private static readonly JsonSerializerOptions ReflectionJson = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        Converters = { new KubernetesTimeConverter() },
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    };

    private static readonly DateTimeOffset Started = new(2026, 11, 22, 13, 57, 57, 250, TimeSpan.FromHours(-5));

    private static readonly Dictionary<string, AwsBatchRunState> Samples = new()
    {
        ["new"] = new AwsBatchRunState { RunId = "r-1" },
        ["running"] = new AwsBatchRunState
        {
            RunId = "7f3a9c",
            JobQueue = "arn:aws:batch:us-east-1:123456789012:job-queue/batchrunner-spot",
            JobDefinition = "arn:aws:batch:us-east-1:123456789012:job-definition/batchrunner-0123456789abcdef0123:3",
            SpecLocation = "s3://bucket/prefix/batchjob=sweep/run=7f3a9c/_spec.json",
            WindowSize = 10_000,
            NextIndex = 25_000,
            Arrays =
            [
                new ArrayRecord { JobId = "0b5c6d4e-1111", JobName = "sweep-7f3a9c-1", Start = 10_000, Size = 10_000, SubmittedAt = Started, Status = "RUNNING", Succeeded = 9_000, Failed = 3, Running = 997 },
                new ArrayRecord { JobId = "0b5c6d4e-2222", JobName = "sweep-7f3a9c-2", Start = 20_000, Size = 5_000, SubmittedAt = Started.AddTicks(1) },
            ],
            DoneSucceeded = 9_998,
            DoneFailed = 2,
            FailedIndexes = "3,4711-4712",
            Failures =
            [
                new IndexFailure(3, "Essential container in task exited: \"OutOfMemoryError\" <137> Zürich 東京 🚀 \u0001", 137),
                new IndexFailure(4711, "Host EC2 (instance i-0) terminated.", null),
            ],
            StartTime = Started,
            CompletionTime = Started.AddDays(2).AddMilliseconds(999),
            Outcome = "Cancelled",
        },
    };

    public static TheoryData<string> Names() => new(Samples.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void The_state_is_written_as_reflection_wrote_it(string name)
    {
        var state = Samples[name];
        var expected = JsonSerializer.Serialize(state, ReflectionJson);

        Assert.Equal(expected, state.ToJson().GetRawText());
        Assert.Equal(expected, JsonSerializer.Serialize(state, AwsBatchRunState.TypeInfo));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void The_state_survives_a_round_trip_and_a_clone(string name)
    {
        var state = Samples[name];
        var written = JsonSerializer.Serialize(state, ReflectionJson);

        var back = AwsBatchRunState.FromJson(state.ToJson())!;
        var clone = state.Clone();

        Assert.Equal(written, JsonSerializer.Serialize(back, ReflectionJson));
        Assert.Equal(written, JsonSerializer.Serialize(clone, ReflectionJson));
        Assert.NotSame(state.Arrays, clone.Arrays);
        Assert.Equal(state.Arrays.Count, back.Arrays.Count);
    }

    [Fact]
    public void A_state_written_before_reads_as_reflection_read_it()
    {
        // As a BatchJob's status holds it after the API server: any casing, numbers as strings, unknown members.
        const string stored = """
            {"RUNID":"r","windowSize":"100","nextIndex":200,"arrays":[{"jobId":"j","jobName":"n","start":100,"size":100,
             "submittedAt":"2026-11-22T13:57:57Z","status":"SUBMITTED"}],"failures":[{"index":5,"reason":"x","exitCode":null}],
             "startTime":"2026-11-22T08:57:57-05:00","later":{"a":[1]}}
            """;
        using var document = JsonDocument.Parse(stored);

        var read = AwsBatchRunState.FromJson(document.RootElement)!;

        var before = document.RootElement.Deserialize<AwsBatchRunState>(ReflectionJson)!;
        Assert.Equal((100, 200, "r"), (read.WindowSize, read.NextIndex, read.RunId));
        Assert.Equal(JsonSerializer.Serialize(before, ReflectionJson), JsonSerializer.Serialize(read, ReflectionJson));
        Assert.Null(AwsBatchRunState.FromJson(null));
    }
}
