using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRunner.Core.Spec;

/// <summary>
/// Where a BatchJob's indexes run, by the name specs, labels, ledgers and messages spell it. The set is open: a host
/// has the backends registered with it (<c>BatchRunner.Backends.BackendRegistry</c>), and a name it has not is
/// refused at its door, naming <c>spec.backend</c>. The three that ship with BatchRunner are named here.
/// </summary>
[JsonConverter(typeof(BackendJsonConverter))]
public readonly record struct Backend
{
    public static readonly Backend Local = new("local");
    public static readonly Backend Kubernetes = new("kubernetes");
    public static readonly Backend AwsBatch = new("aws-batch");

    /// <summary>A backend name is a DNS label (it becomes a label value and part of object names).</summary>
    public const int MaxNameLength = 63;

    private readonly string? _name;

    private Backend(string name) => _name = name;

    /// <summary>The name; a default-constructed value has none and is never a silent "local".</summary>
    public string Name => _name ?? throw new InvalidOperationException("a Backend without a name (default value)");

    /// <summary>Reads a name: lowercase letters, digits and '-', starting with a letter, not ending with '-'.</summary>
    public static bool TryParse(string? text, out Backend backend)
    {
        backend = default;
        if (string.IsNullOrEmpty(text) || text.Length > MaxNameLength || text[0] is < 'a' or > 'z' || text[^1] == '-'
            || !text.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
        {
            return false;
        }

        backend = text switch
        {
            "local" => Local,
            "kubernetes" => Kubernetes,
            "aws-batch" => AwsBatch,
            _ => new Backend(text),
        };
        return true;
    }

    public static Backend Parse(string text) =>
        TryParse(text, out var backend) ? backend : throw new FormatException($"\"{text}\" is not a backend name (a DNS label such as aws-batch)");

    public override string ToString() => _name ?? "";
}

/// <summary>
/// Writes a backend as its name, except the three built-in ones, which keep the spelling their enum had
/// (<c>Local</c>, <c>Kubernetes</c>, <c>AwsBatch</c>): stored specs and the run id's canonical JSON were written
/// so, and run ids must not change. Reads both.
/// </summary>
public sealed class BackendJsonConverter : JsonConverter<Backend>
{
    private static readonly (Backend Backend, string Stored)[] Legacy =
        [(Backend.Local, "Local"), (Backend.Kubernetes, "Kubernetes"), (Backend.AwsBatch, "AwsBatch")];

    public override Backend Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        foreach (var (backend, stored) in Legacy)
        {
            if (text == stored)
            {
                return backend;
            }
        }

        return Backend.TryParse(text, out var named) ? named : throw new JsonException($"\"{text}\" is not a backend name");
    }

    public override void Write(Utf8JsonWriter writer, Backend value, JsonSerializerOptions options)
    {
        foreach (var (backend, stored) in Legacy)
        {
            if (value == backend)
            {
                writer.WriteStringValue(stored);
                return;
            }
        }

        writer.WriteStringValue(value.Name);
    }
}
