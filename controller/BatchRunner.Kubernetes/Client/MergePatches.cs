using System.Buffers;
using System.Text;
using System.Text.Json;
using BatchRunner.Kubernetes.Status;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// The JSON merge patches BatchRunner sends, written as text: KubernetesClient sends a string <c>V1Patch</c> as it
/// is, so no anonymous object goes through its reflection-based serializer (the CLI is published as Native AOT).
/// The text is what that serializer made of the anonymous objects before: an absent value is left out, never
/// written as null (in a merge patch null would delete the field).
/// </summary>
internal static class MergePatches
{
    /// <summary><c>{"metadata":{"finalizers":[…],"resourceVersion":"…"}}</c>: with the version, a compare-and-swap.</summary>
    public static string Finalizers(IReadOnlyList<string> finalizers, string? resourceVersion) => Write(writer =>
    {
        writer.WriteStartObject("metadata");
        writer.WriteStartArray("finalizers");
        foreach (var finalizer in finalizers)
        {
            writer.WriteStringValue(finalizer);
        }

        writer.WriteEndArray();
        if (resourceVersion is not null)
        {
            writer.WriteString("resourceVersion", resourceVersion);
        }

        writer.WriteEndObject();
    });

    /// <summary><c>{"status":{…}}</c>, the status as <see cref="BatchJobStatus.TypeInfo"/> writes it.</summary>
    public static string Status(BatchJobStatus status) => Write(writer =>
    {
        writer.WritePropertyName("status");
        JsonSerializer.Serialize(writer, status, BatchJobStatus.TypeInfo);
    });

    /// <summary><c>{"spec":{"parallelism":…,"activeDeadlineSeconds":…}}</c>; no deadline leaves the Job's as it is.</summary>
    public static string JobSpec(int parallelism, long? activeDeadlineSeconds) => Write(writer =>
    {
        writer.WriteStartObject("spec");
        writer.WriteNumber("parallelism", parallelism);
        if (activeDeadlineSeconds is { } deadline)
        {
            writer.WriteNumber("activeDeadlineSeconds", deadline);
        }

        writer.WriteEndObject();
    });

    private static string Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
