using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;

namespace BatchRunner.Core.Tests;

/// <summary>
/// Core's JSON is source-generated (the CLI is Native AOT). What it writes must stay byte-for-byte what the
/// reflection-based serializer wrote: run ids name existing runs in existing stores, and ledger rows are read by
/// DuckDB and Athena. Reflection is fine here, in the test.
/// </summary>
public class SourceGeneratedJsonTests
{
    private static readonly JsonSerializerOptions ReflectionCanonical = new()
    {
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
        Converters = { new JsonStringEnumConverter() },
    };

    private static readonly JsonSerializerOptions ReflectionPlain = new()
    {
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };

    /// <summary>Every spec field set, with values that need escaping and numbers of every shape.</summary>
    private static readonly BatchJob Rich = Specs.Valid("""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata:
          name: rich-sweep
          namespace: lab
          labels: {team: "queues & <things>"}
          annotations: {note: "é ü \"quoted\" 'single'"}
        spec:
          image: python:3.12
          command: [python, "sim <fast>.py"]
          args: ["--name=\u00e9", "tab\there"]
          env: [{name: MODE, value: "a&b"}, {name: EMPTY, value: ""}]
          resources: {cpu: 500m, memory: 1Gi}
          parallelism: 3
          sweep:
            grid: {rate: [0.1, 1e-7, 2.5e300, -3, 7.0], policy: ["fifo", "lifo <x>", "ü"], fast: [true, false]}
            repeats: 2
            seed: 42
          retry: {attempts: 3, backoffSeconds: 0.5, maxBackoffSeconds: 60}
          timeoutSeconds: 600.25
          deadlineSeconds: 3600
          backend: aws-batch
          results: {uri: "s3://bucket/prefix", format: csv}
        """);

    private static readonly BatchJob Listed = Specs.Valid(Specs.Yaml("""
          sweep:
            list:
              - {servers: 1, label: "one \"1\""}
              - {servers: 2, label: "two/2"}
        """));

    [Fact]
    public void The_run_id_is_the_one_reflection_gave()
    {
        foreach (var job in new[] { Rich, Listed })
        {
            var resultsDefining = job.Spec with
            {
                Parallelism = 1, Retry = RetryPolicy.Default, TimeoutSeconds = null, DeadlineSeconds = null, Backend = Backend.Local,
            };
            var canonical = JsonSerializer.Serialize(new { job.Metadata.Namespace, job.Metadata.Name, Spec = resultsDefining }, ReflectionCanonical);
            var expected = "r" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))[..11];

            Assert.Equal(expected, RunIdentity.For(job));
        }
    }

    [Fact]
    public void A_run_id_written_by_an_earlier_version_still_names_the_same_run()
    {
        // Computed by the reflection-based serializer before the move to source generation; a store made then must
        // still resume under the same run.
        Assert.Equal("rffc0677fb8f", RunIdentity.For(Rich));
    }

    [Fact]
    public void The_stored_spec_is_the_JSON_reflection_gave()
    {
        Assert.Equal(JsonSerializer.Serialize(Rich, ReflectionCanonical), RunIdentity.SpecJson(Rich));
        Assert.Equal(JsonSerializer.Serialize(Listed, ReflectionCanonical), RunIdentity.SpecJson(Listed));
    }

    [Fact]
    public void A_ledger_row_is_the_bytes_reflection_gave_and_reads_back()
    {
        var row = new LedgerRow
        {
            BatchJob = "rich-sweep", Namespace = "lab", Run = "r0123456789a", Index = 7, Attempt = 2, Repeat = 1, Seed = -9_000_000_000,
            Params = JsonDocument.Parse("""{"rate":1e-7,"policy":"lifo <x>","fast":true}""").RootElement,
            Status = "failed", ExitCode = null, Reason = "killed by signal 15, SIGTERM: \"late\"",
            StartedAt = new DateTimeOffset(2026, 11, 22, 9, 0, 0, 123, TimeSpan.FromHours(2)),
            FinishedAt = new DateTimeOffset(2026, 11, 22, 9, 0, 1, 456, TimeSpan.Zero),
            DurationSeconds = 3601.333, Backend = "local", OutputFiles = 2, OutputBytes = 1 << 20, OutputRows = 10, OutputMalformed = 0,
            OutputNote = "é",
        };

        var bytes = row.ToJsonUtf8();

        Assert.Equal(Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(row, ReflectionPlain)), Encoding.UTF8.GetString(bytes));
        var back = LedgerRow.FromJson(bytes);
        Assert.Equal(row.Reason, back.Reason);
        Assert.Equal(row.StartedAt, back.StartedAt);
        Assert.Equal("lifo <x>", back.Params.GetProperty("policy").GetString());
        Assert.Equal(1e-7, back.Params.GetProperty("rate").GetDouble());
    }

    [Theory]
    [InlineData("fifo")]
    [InlineData("quote \" backslash \\ slash /")]
    [InlineData("<html> & 'apostrophe' + plus")]
    [InlineData("é ü 漢字 🙂")]
    [InlineData("tab\t newline\n nul\0")]
    public void A_string_parameter_is_escaped_as_reflection_escaped_it(string value)
    {
        Assert.Equal(JsonSerializer.Serialize(value, ReflectionPlain), ParameterValue.FromString(value).Json);
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(1e-7)]
    [InlineData(2.5e300)]
    [InlineData(-0.3333333333333333)]
    [InlineData(123456789.125)]
    public void A_real_parameter_is_formatted_as_reflection_formatted_it(double value)
    {
        Assert.Equal(JsonSerializer.Serialize(value, ReflectionPlain), ParameterValue.FromDouble(value).Json);
    }
}
