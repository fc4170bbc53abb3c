using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using k8s;
using k8s.Models;

namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// A watch's events read straight off the API server's stream: each line decoded once into its type, without the
/// objects' managedFields (as controller-runtime's caches strip them). The library's watcher reads every line twice
/// (once to see whether it is a Status) and hands custom objects over as a JsonElement that had to be written out
/// and read a third time; with managedFields (about as large as a Job itself) kept in every cached object.
/// tests/bench/operator.sh decodes a burst's own events both ways: this takes about 0.55 of the time and 0.4 of the
/// allocations, a few per cent of the controller's CPU in the burst.
/// </summary>
internal static class WatchEvents
{
    /// <summary>
    /// The longest event line read: the API server refuses requests over 3 MiB and etcd stores objects up to 1.5 MiB
    /// unless told otherwise; a line past this is not an object of a cluster but a broken or hostile stream.
    /// </summary>
    public const int MaxEventBytes = 16 * 1024 * 1024;

    /// <summary>The library's settings for the Kubernetes models, with managedFields skipped rather than read.</summary>
    public static JsonSerializerOptions Json { get; } = CreateJson();

    /// <summary>Watches <paramref name="pathAndQuery"/> (relative to the API server's address, with <c>watch=true</c>) until the server ends it.</summary>
    public static async IAsyncEnumerable<(WatchEventType Type, T Object)> ReadAsync<T>(
        IKubernetes kubernetes, string pathAndQuery, [EnumeratorCancellation] CancellationToken cancellation)
    {
        var client = kubernetes as k8s.Kubernetes ?? throw new NotSupportedException(
            $"watches read the API server's stream through the KubernetesClient library's own client, not a {kubernetes.GetType().Name}");
        using var request = new HttpRequestMessage(HttpMethod.Get, ClientPipeline.Address(client, pathAndQuery));
        using var response = await ClientPipeline.SendAsync(client, request, null, HttpCompletionOption.ResponseHeadersRead, cancellation).ConfigureAwait(false);
        var body = await response.Content.ReadAsStreamAsync(cancellation).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            using var lines = new LineReader(body, MaxEventBytes);
            while (await lines.ReadLineAsync(cancellation).ConfigureAwait(false) is { } line)
            {
                if (!line.Span.Trim(" \t\r"u8).IsEmpty)
                {
                    yield return Decode<T>(line.Span);
                }
            }
        }
    }

    /// <summary>
    /// One line of a watch, <c>{"type":…,"object":…}</c>. An ERROR event (410 Gone among them) is thrown as the
    /// library reports it, a <see cref="KubernetesException"/> with the server's Status.
    /// </summary>
    public static (WatchEventType Type, T Object) Decode<T>(ReadOnlySpan<byte> line)
    {
        var type = TypeOf(line);
        if (type == WatchEventType.Error)
        {
            throw new KubernetesException(ObjectOf(line, (JsonTypeInfo<V1Status>)Json.GetTypeInfo(typeof(V1Status))));
        }

        return (type, ObjectOf(line, (JsonTypeInfo<T>)Json.GetTypeInfo(typeof(T))));
    }

    private static WatchEventType TypeOf(ReadOnlySpan<byte> line)
    {
        var reader = At(line, "type"u8, "a watch event without a type");
        return reader.TokenType == JsonTokenType.String ? reader.GetString() switch
        {
            "ADDED" => WatchEventType.Added,
            "MODIFIED" => WatchEventType.Modified,
            "DELETED" => WatchEventType.Deleted,
            "BOOKMARK" => WatchEventType.Bookmark,
            "ERROR" => WatchEventType.Error,
            var other => throw new JsonException($"a watch event of unknown type \"{other}\""),
        } : throw new JsonException("a watch event whose type is not a string");
    }

    private static TValue ObjectOf<TValue>(ReadOnlySpan<byte> line, JsonTypeInfo<TValue> typeInfo)
    {
        var reader = At(line, "object"u8, "a watch event without an object");
        return JsonSerializer.Deserialize(ref reader, typeInfo) ?? throw new JsonException("a watch event whose object is null");
    }

    /// <summary>A reader at the value of the event's top-level <paramref name="property"/> (the API server writes the type first).</summary>
    private static Utf8JsonReader At(ReadOnlySpan<byte> line, ReadOnlySpan<byte> property, string missing)
    {
        var reader = new Utf8JsonReader(line);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("a watch event that is not a JSON object");
        }

        return JsonProperty.MoveTo(ref reader, property) ? reader : throw new JsonException(missing);
    }

    private static JsonSerializerOptions CreateJson()
    {
        JsonSerializerOptions? library = null;
        KubernetesJson.AddJsonOptions(options => library = options);
        var json = new JsonSerializerOptions(library ?? throw new InvalidOperationException("KubernetesJson did not hand over its settings"));
        json.Converters.Add(new SkipManagedFields());
        json.MakeReadOnly();
        return json;
    }

    /// <summary>managedFields are the server's record of who set which field; nothing here reads them.</summary>
    private sealed class SkipManagedFields : JsonConverter<IList<V1ManagedFieldsEntry>>
    {
        public override bool HandleNull => true;

        public override IList<V1ManagedFieldsEntry>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            reader.Skip();
            return null;
        }

        public override void Write(Utf8JsonWriter writer, IList<V1ManagedFieldsEntry> value, JsonSerializerOptions options) =>
            throw new NotSupportedException("the watch's settings only read");
    }
}
