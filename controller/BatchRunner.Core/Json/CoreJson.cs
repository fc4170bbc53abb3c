using System.Text.Json.Serialization;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;

namespace BatchRunner.Core.Json;

/// <summary>
/// Source-generated JSON metadata for what Core writes and reads: no reflection, so the CLI publishes as Native AOT
/// and a run starts without JIT-compiling serializers. Output is byte-for-byte what reflection-based
/// <see cref="System.Text.Json.JsonSerializer"/> wrote (a test compares both).
/// </summary>
[JsonSourceGenerationOptions(UseStringEnumConverter = true)]
[JsonSerializable(typeof(BatchJob))]
[JsonSerializable(typeof(CanonicalRun))]
[JsonSerializable(typeof(Backend))]
internal sealed partial class CanonicalJson : JsonSerializerContext;

/// <summary>
/// The resolved spec read back (<see cref="Store.StoredSpec"/>): the members <see cref="CanonicalJson"/> writes, each
/// one required and non-null where the model says so, so a damaged or foreign document is refused, not half-read.
/// </summary>
[JsonSourceGenerationOptions(UseStringEnumConverter = true, RespectRequiredConstructorParameters = true, RespectNullableAnnotations = true)]
[JsonSerializable(typeof(BatchJob))]
internal sealed partial class StoredSpecJson : JsonSerializerContext;

/// <summary>Ledger rows and JSON scalars, with the serializer's default options.</summary>
[JsonSerializable(typeof(LedgerRow))]
[JsonSerializable(typeof(StoredPoint))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(IReadOnlyList<string>))]
internal sealed partial class PlainJson : JsonSerializerContext;

/// <summary>Text as a JSON string, escaped as the serializer's defaults escape it (names and values in parameter JSON).</summary>
public static class JsonStrings
{
    public static string Quote(string text) => System.Text.Json.JsonSerializer.Serialize(text, PlainJson.Default.String);
}

/// <summary>What decides a run's results: the members (and their order) of the run id's canonical JSON.</summary>
internal sealed record CanonicalRun(string Namespace, string Name, BatchJobSpec Spec);
