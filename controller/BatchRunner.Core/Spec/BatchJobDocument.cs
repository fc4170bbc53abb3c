using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace BatchRunner.Core.Spec;

/// <summary>
/// A resolved <see cref="BatchJob"/> written back as a document, defaults filled in and map keys sorted, so that the
/// same job always gives the same JSON text whatever YAML or JSON it came from. The parser reads it back as the
/// same job; it is what a sink records (the custom resource's spec, the local submission), and its hash is the
/// job's content identity: a second request for the same name is the same job exactly when the hashes agree.
/// </summary>
public static class BatchJobDocument
{
    /// <summary>The canonical document as compact JSON text, and <c>sha256:</c> with the hex SHA-256 of its UTF-8 bytes.</summary>
    public static (string Text, string ContentHash) Write(BatchJob job)
    {
        // Written straight to UTF-8 and hashed there: this runs for every message, so no tree and no second encoding.
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("apiVersion", BatchJob.ApiVersion);
            writer.WriteString("kind", BatchJob.KindName);
            writer.WriteStartObject("metadata");
            writer.WriteString("name", job.Metadata.Name);
            writer.WriteString("namespace", job.Metadata.Namespace);
            WriteMap(writer, "labels", job.Metadata.Labels);
            WriteMap(writer, "annotations", job.Metadata.Annotations);
            writer.WriteEndObject();
            WriteSpec(writer, job.Spec);
            writer.WriteEndObject();
        }

        var hash = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(buffer.WrittenSpan));
        return (Encoding.UTF8.GetString(buffer.WrittenSpan), hash);
    }

    private static void WriteSpec(Utf8JsonWriter writer, BatchJobSpec spec)
    {
        writer.WriteStartObject("spec");
        if (spec.Image is not null)
        {
            writer.WriteString("image", spec.Image);
        }

        WriteStrings(writer, "command", spec.Command);
        WriteStrings(writer, "args", spec.Args);
        writer.WriteStartArray("env");
        foreach (var variable in spec.Env)
        {
            writer.WriteStartObject();
            writer.WriteString("name", variable.Name);
            if (variable.Value.Length > 0)
            {
                // Left out when empty, as the CRD allows: a Kubernetes 1.20 API server stores "" in this list as null
                // and then refuses it ("must be of type string"), found by the every-door round trip.
                writer.WriteString("value", variable.Value);
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteStartObject("resources");
        writer.WriteString("cpu", spec.Resources.Cpu);
        writer.WriteString("memory", spec.Resources.Memory);
        writer.WriteEndObject();
        writer.WriteNumber("completions", spec.Completions);
        writer.WriteNumber("parallelism", spec.Parallelism);
        if (spec.Sweep is { } sweep)
        {
            WriteSweep(writer, sweep);
        }

        writer.WriteStartObject("retry");
        writer.WriteNumber("attempts", spec.Retry.Attempts);
        writer.WriteNumber("backoffSeconds", spec.Retry.BackoffSeconds);
        writer.WriteNumber("maxBackoffSeconds", spec.Retry.MaxBackoffSeconds);
        writer.WriteEndObject();
        if (spec.TimeoutSeconds is { } timeout)
        {
            writer.WriteNumber("timeoutSeconds", timeout);
        }

        if (spec.DeadlineSeconds is { } deadline)
        {
            writer.WriteNumber("deadlineSeconds", deadline);
        }

        writer.WriteString("backend", spec.Backend.Name);
        if (spec.Queue is { } queue)
        {
            writer.WriteString("queue", queue);
        }

        if (spec.PriorityClass is { } priorityClass)
        {
            writer.WriteString("priority", priorityClass);
        }
        else if (spec.Priority != 0)
        {
            writer.WriteNumber("priority", spec.Priority);
        }

        if (!spec.ReusesResults)
        {
            writer.WriteBoolean("reuse", false);
        }

        if (spec.Budget is { } budget)
        {
            writer.WriteStartObject("budget");
            writer.WriteNumber("usd", budget);
            writer.WriteEndObject();
        }

        writer.WriteStartObject("results");
        if (spec.Results.Uri is not null)
        {
            writer.WriteString("uri", spec.Results.Uri);
        }

        writer.WriteString("format", spec.Results.Format == ResultsFormat.Csv ? "csv" : "jsonl");
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteSweep(Utf8JsonWriter writer, SweepSpec sweep)
    {
        writer.WriteStartObject("sweep");
        if (sweep.Grid.Count > 0)
        {
            // Axes are already sorted by name: the parser orders them so, whatever order the document had.
            writer.WriteStartObject("grid");
            foreach (var axis in sweep.Grid)
            {
                writer.WriteStartArray(axis.Name);
                foreach (var value in axis.Values)
                {
                    writer.WriteRawValue(value.Json, skipInputValidation: true);
                }

                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        if (sweep.List.Count > 0)
        {
            writer.WriteStartArray("list");
            foreach (var point in sweep.List)
            {
                writer.WriteStartObject();
                foreach (var parameter in point)
                {
                    writer.WritePropertyName(parameter.Name);
                    writer.WriteRawValue(parameter.Value.Json, skipInputValidation: true);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteNumber("repeats", sweep.Repeats);
        writer.WriteNumber("seed", sweep.Seed);
        writer.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter writer, string name, IReadOnlyList<string> values)
    {
        writer.WriteStartArray(name);
        foreach (var value in values)
        {
            writer.WriteStringValue(value);
        }

        writer.WriteEndArray();
    }

    private static void WriteMap(Utf8JsonWriter writer, string name, IReadOnlyDictionary<string, string> map)
    {
        if (map.Count == 0)
        {
            return;
        }

        writer.WriteStartObject(name);
        foreach (var (key, value) in map.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            writer.WriteString(key, value);
        }

        writer.WriteEndObject();
    }
}
