using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using BatchRunner.Store;
using Xunit;

namespace BatchRunner.Local.Tests;

/// <summary>
/// <c>_run.json</c> is written through source-generated metadata (the CLI is Native AOT). Readers (compaction,
/// Athena setup, the controller) rely on its members and formats, so it must be what the reflection-based
/// serializer wrote from the executor's former anonymous object.
/// </summary>
public class RunManifestTests
{
    private static readonly JsonSerializerOptions ReflectionIndented = new() { WriteIndented = true, TypeInfoResolver = new DefaultJsonTypeInfoResolver() };

    [Theory]
    [InlineData(null, null, null, false)]
    [InlineData("2 indexes failed: \"boom\" <x>", 70, 2, true)]
    public void A_run_manifest_is_the_JSON_the_reflection_serializer_wrote(string? reason, int? succeeded, int? failed, bool finished)
    {
        var started = new DateTimeOffset(2026, 11, 22, 17, 49, 22, 123, TimeSpan.Zero).AddTicks(4567);
        DateTimeOffset? finishedAt = finished ? started.AddSeconds(21.5) : null;
        var spec = JsonDocument.Parse("""{"Metadata":{"Name":"mmc"},"Spec":{"Completions":72,"Backend":"Local"}}""").RootElement;
        string[] parameters = ["arrival_rate", "servers"];

        var written = JsonSerializer.SerializeToUtf8Bytes(
            new RunManifest("mmc", "default", "ra5fbc37e1d7", "local", "Running", reason, 72, parameters, succeeded, failed, started, finishedAt, spec),
            ManifestJson.Default.RunManifest);
        var former = JsonSerializer.SerializeToUtf8Bytes(
            new
            {
                batchjob = "mmc", @namespace = "default", run = "ra5fbc37e1d7", backend = "local", phase = "Running", reason,
                completions = 72, parameters, succeeded, failed, started_at = started, finished_at = finishedAt, spec,
            },
            ReflectionIndented);

        Assert.Equal(Encoding.UTF8.GetString(former), Encoding.UTF8.GetString(written));
    }

    [Fact]
    public void Compaction_keeps_every_member_of_the_manifest_it_annotates()
    {
        var manifest = """{"batchjob":"mmc","run":"r1","phase":"Succeeded","note":"é <kept>"}"""u8.ToArray();

        var annotated = CompactionState.With(manifest, new JsonObject { ["rows"] = 3 }, "mmc", "r1");
        var back = JsonNode.Parse(annotated)!.AsObject();

        Assert.Equal("é <kept>", (string?)back["note"]);
        Assert.Equal("Succeeded", (string?)back["phase"]);
        Assert.Equal(3, (int?)back[CompactionState.Property]?["rows"]);
        Assert.Contains('\n', Encoding.UTF8.GetString(annotated));
        Assert.DoesNotContain("compaction", Encoding.UTF8.GetString(CompactionState.Without(annotated)), StringComparison.Ordinal);
    }
}
