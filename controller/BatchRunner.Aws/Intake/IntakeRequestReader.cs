using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Core.Spec;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace BatchRunner.Aws.Intake;

/// <summary>A message body that is a valid BatchJob: the job, its canonical document and content hash, and where its name came from.</summary>
public sealed record IntakeRequest(BatchJob Job, string Document, string ContentHash, IdentitySource IdentitySource)
{
    public string Key => $"{Job.Metadata.Namespace}/{Job.Metadata.Name}";
}

/// <summary>What reading a body gave: a request, or the reason there is none.</summary>
public sealed record IntakeReadResult(IntakeRequest? Request, Rejection? Rejection)
{
    public static IntakeReadResult Refuse(RejectCode code, string reason) => new(null, new Rejection(code, reason));
}

/// <summary>
/// Reads a message body into a BatchJob with the parser the CLI and the custom resource use, after checking what
/// the parser cannot see from a .NET string: its size on the wire, and whether it was UTF-8 text at all (bytes in
/// another encoding reach us as U+FFFD; binary data as control characters or mostly U+FFFD). A document without
/// <c>metadata.name</c> is accepted here (the queue names it, see <see cref="RequestIdentity"/>); every other
/// error is the parser's, word for word.
/// </summary>
public static class IntakeRequestReader
{
    /// <summary>SQS's own limit was 256 KiB for years; a BatchJob document is rarely a tenth of that.</summary>
    public const int DefaultMaxBodyBytes = 256 * 1024;

    private const char Replacement = '\uFFFD';

    // The YAML reader's own depth limit; deeper documents go to it and get its error.
    private static readonly JsonDocumentOptions JsonLimits = new() { MaxDepth = 64 };

    public static IntakeReadResult Read(
        string? body, string? requestId, string? deduplicationId, int maxBodyBytes = DefaultMaxBodyBytes, Backend? defaultBackend = null)
    {
        try
        {
            return ReadChecked(body, requestId, deduplicationId, maxBodyBytes, defaultBackend);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or OverflowException)
        {
            // A safety net: should the parser ever throw rather than report, reading is pure and would throw again at
            // every delivery, so the document is refused instead of retried.
            return IntakeReadResult.Refuse(RejectCode.InvalidSpec, $"the document could not be read: {e.Message}");
        }
    }

    private static IntakeReadResult ReadChecked(string? body, string? requestId, string? deduplicationId, int maxBodyBytes, Backend? defaultBackend)
    {
        if (CheckText(body ?? "", maxBodyBytes) is { } refused)
        {
            return new IntakeReadResult(null, refused);
        }

        var text = body!;
        var parsed = Parse(text, defaultBackend);
        var source = IdentitySource.MetadataName;
        if (!parsed.IsValid)
        {
            var errors = parsed.Errors.Where(e => !IsMissingName(e)).ToList();
            if (errors.Count > 0)
            {
                return errors is [{ Path: "", Message: "document is empty" }]
                    ? IntakeReadResult.Refuse(RejectCode.Empty, "the body holds no document (only white space or comments)")
                    : IntakeReadResult.Refuse(RejectCode.InvalidSpec, Describe(errors));
            }

            // Only the name is missing: name it by the request's identity and read it again, every rule applying.
            (var name, source) = RequestIdentity.Derive(requestId, deduplicationId, text);
            var named = WithName(text, name);
            parsed = named is null ? parsed : Parse(named, defaultBackend);
            if (!parsed.IsValid)
            {
                return IntakeReadResult.Refuse(RejectCode.InvalidSpec, Describe(parsed.Errors));
            }
        }

        var job = parsed.Job!;
        var (document, hash) = BatchJobDocument.Write(job);
        return new IntakeReadResult(new IntakeRequest(job, document, hash, source), null);
    }

    /// <summary>
    /// The parser's reading of a document. A JSON object (what SDK producers send) is read by System.Text.Json and
    /// bound by the parser's own binder (<see cref="BatchJobParser.FromNode"/>, as for a custom resource), five
    /// times faster than through YAML; whatever does not come out valid that way (a syntax error, a duplicate key,
    /// a wrong value) is read again exactly as the CLI reads it, so every error is the CLI's, word for word.
    /// </summary>
    internal static ParseResult Parse(string text, Backend? defaultBackend = null, bool jsonFastPath = true)
    {
        if (jsonFastPath && text.AsSpan().TrimStart().StartsWith("{", StringComparison.Ordinal))
        {
            try
            {
                var parsed = BatchJobParser.FromNode(JsonNode.Parse(text, documentOptions: JsonLimits), defaultBackend);
                if (parsed.IsValid)
                {
                    return parsed;
                }
            }
            catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException or FormatException)
            {
                // Not plain JSON after all (or a duplicate key, which JsonObject reports on access): the YAML reading decides.
            }
        }

        return BatchJobParser.Parse(text, defaultBackend);
    }

    /// <summary>The size and encoding checks alone: null when the body is UTF-8 text within the limit.</summary>
    public static Rejection? CheckText(string body, int maxBodyBytes)
    {
        // UTF-8 is at most 3 bytes per UTF-16 unit: a short body needs no count.
        var bytes = body.Length * 3L <= maxBodyBytes ? 0 : Encoding.UTF8.GetByteCount(body);
        if (bytes > maxBodyBytes)
        {
            return new Rejection(RejectCode.Oversize, $"the body is {bytes:N0} bytes, more than the limit of {maxBodyBytes:N0}");
        }

        int replacements = 0, controls = 0, loneSurrogates = 0;
        for (var i = 0; i < body.Length; i++)
        {
            var c = body[i];
            if (c == Replacement)
            {
                replacements++;
            }
            else if (char.IsHighSurrogate(c) && i + 1 < body.Length && char.IsLowSurrogate(body[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                loneSurrogates++;
            }
            else if ((c < ' ' && c is not ('\t' or '\n' or '\r')) || c is '\uFFFE' or '\uFFFF')
            {
                controls++;
            }
        }

        if (controls > 0 || replacements * 10L > body.Length)
        {
            return new Rejection(RejectCode.Binary,
                $"the body is binary data, not a text document ({controls} control characters, {replacements} bytes that are not UTF-8); send the BatchJob as UTF-8 YAML or JSON");
        }

        if (replacements > 0 || loneSurrogates > 0)
        {
            return new Rejection(RejectCode.NotUtf8,
                $"the body is not UTF-8 text: {replacements + loneSurrogates} of its characters arrived as U+FFFD or unpaired surrogates, " +
                "which is what text in another encoding (Latin-1, UTF-16, …) becomes; send the BatchJob encoded as UTF-8");
        }

        return string.IsNullOrWhiteSpace(body) ? new Rejection(RejectCode.Empty, "the body is empty") : null;
    }

    /// <summary>The parser's errors as the CLI prints them, one a line.</summary>
    public static string Describe(IEnumerable<SpecError> errors) => string.Join('\n', errors.Select(e => e.ToString()));

    private static bool IsMissingName(SpecError error) =>
        error.Message == "required" && error.Path is "metadata.name" or "metadata";

    /// <summary>
    /// The document with <c>metadata.name</c> added. The text already parsed without any other error, so its tree
    /// is within the parser's depth and size limits; the result is parsed again, so nothing slips past the parser.
    /// </summary>
    private static string? WithName(string text, string name)
    {
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text.TrimStart('\uFEFF')));
            if (stream.Documents is not [var document] || document.RootNode is not YamlMappingNode root)
            {
                return null;
            }

            var key = new YamlScalarNode("metadata");
            if (!root.Children.TryGetValue(key, out var node) || node is not YamlMappingNode metadata)
            {
                metadata = new YamlMappingNode();
                root.Children[key] = metadata;
            }

            metadata.Children[new YamlScalarNode("name")] = new YamlScalarNode(name) { Style = ScalarStyle.DoubleQuoted };
            using var writer = new StringWriter();
            stream.Save(writer, assignAnchors: false);
            return writer.ToString();
        }
        catch (YamlException)
        {
            return null;
        }
    }
}
