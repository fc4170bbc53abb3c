using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace BatchRunner.Core.Spec;

/// <summary>
/// Reads YAML (and therefore JSON, its subset) into a JSON tree, resolving plain scalars by the YAML 1.2
/// core schema: <c>yes</c> stays a string, <c>0.5</c> is a number, a quoted <c>"5"</c> is a string.
/// </summary>
internal static partial class YamlTree
{
    /// <summary>
    /// Most nodes one document may expand to. Anchors and aliases share nodes, so a small document can expand
    /// exponentially ("billion laughs"); counting what is converted bounds the work.
    /// </summary>
    public const int MaxNodes = 500_000;

    /// <summary>
    /// Deepest nesting of mappings and sequences, as written and after expanding aliases. Loading and converting
    /// are recursive, so this bounds the stack: a stack overflow would kill the process, not fail the parse.
    /// </summary>
    public const int MaxDepth = 64;

    public static IReadOnlyList<JsonNode?> LoadDocuments(string text)
    {
        CheckStructure(text);
        var stream = new YamlStream();
        var parser = new Parser(new StringReader(text));
        try
        {
            stream.Load(parser);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw Unreadable(parser);
        }

        var budget = new NodeBudget();
        return stream.Documents.Select(d => Convert(d.RootNode, budget, depth: 0)).ToList();
    }

    /// <summary>
    /// Reads the event stream, which takes no recursion, before <see cref="YamlStream"/> builds its tree, which does:
    /// rejects deep nesting, an alias inside the node it names (a cycle), and an alias to no anchor (with its position).
    /// </summary>
    private static void CheckStructure(string text)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var open = new Stack<string?>(); // the anchor, if any, of each mapping or sequence being read
        while (MoveNext(parser))
        {
            var current = parser.Current!;
            var anchor = current is NodeEvent { Anchor.IsEmpty: false } node ? node.Anchor.Value : null;
            if (anchor is not null)
            {
                anchors.Add(anchor);
            }

            switch (current)
            {
                case AnchorAlias alias when !anchors.Contains(alias.Value.Value):
                    throw new YamlException(alias.Start, alias.End, $"alias *{alias.Value.Value} names no anchor defined before it");
                case AnchorAlias alias when open.Contains(alias.Value.Value):
                    throw new YamlException(alias.Start, alias.End, $"alias *{alias.Value.Value} is inside the node it names");
                case MappingStart or SequenceStart:
                    open.Push(anchor);
                    if (open.Count > MaxDepth)
                    {
                        throw new YamlException(current.Start, current.End, $"document nests deeper than {MaxDepth} levels");
                    }

                    break;
                case MappingEnd or SequenceEnd:
                    open.Pop();
                    break;
            }
        }
    }

    private static bool MoveNext(Parser parser)
    {
        try
        {
            return parser.MoveNext();
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw Unreadable(parser);
        }
    }

    /// <summary>
    /// YamlDotNet reports some malformed input with an exception that is not a <see cref="YamlException"/> and has no
    /// position (a flow list continued on a less indented line, a key without a value before a dedent); name the
    /// last event read instead, so that the document is rejected like any other malformed one.
    /// </summary>
    private static YamlException Unreadable(Parser parser)
    {
        var near = parser.Current?.Start ?? Mark.Empty;
        return new YamlException(near, near, "the YAML parser stopped near here (check brackets and indentation)");
    }

    private sealed class NodeBudget
    {
        private int _used;

        public void Spend(YamlNode node)
        {
            if (++_used > MaxNodes)
            {
                throw new YamlException(node.Start, node.End, $"document expands to more than {MaxNodes:N0} nodes (through anchors and aliases?)");
            }
        }
    }

    private static JsonNode? Convert(YamlNode node, NodeBudget budget, int depth)
    {
        budget.Spend(node);
        if (depth > MaxDepth)
        {
            throw new YamlException(node.Start, node.End, $"document nests deeper than {MaxDepth} levels (through anchors and aliases?)");
        }

        return node switch
        {
            YamlMappingNode mapping => ConvertMapping(mapping, budget, depth),
            YamlSequenceNode sequence => new JsonArray(sequence.Children.Select(c => Convert(c, budget, depth + 1)).ToArray()),
            YamlScalarNode scalar => ConvertScalar(scalar),
            _ => throw new YamlException(node.Start, node.End, $"unsupported YAML node {node.NodeType}"),
        };
    }

    private static JsonObject ConvertMapping(YamlMappingNode mapping, NodeBudget budget, int depth)
    {
        var result = new JsonObject();
        foreach (var (key, value) in mapping.Children)
        {
            if (key is not YamlScalarNode { Value: { } name })
            {
                throw new YamlException(key.Start, key.End, "mapping keys must be plain strings");
            }

            if (result.ContainsKey(name))
            {
                throw new YamlException(key.Start, key.End, $"duplicate key '{name}'");
            }

            result[name] = Convert(value, budget, depth + 1);
        }

        return result;
    }

    private static JsonNode? ConvertScalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? string.Empty;
        if (scalar.Style != ScalarStyle.Plain || !scalar.Tag.IsEmpty)
        {
            return scalar.Tag.IsEmpty || scalar.Tag.Value == "tag:yaml.org,2002:str" ? JsonValue.Create(text) : ResolvePlain(text);
        }

        return ResolvePlain(text);
    }

    private static JsonNode? ResolvePlain(string text)
    {
        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "false" or "False" or "FALSE":
                return JsonValue.Create(false);
        }

        if (IntegerPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
        {
            return JsonValue.Create(integer);
        }

        // A real beyond double's range (1e400) parses as infinity, which JSON cannot hold: it stays text, and the
        // field that wanted a number says so.
        if (FloatPattern().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) && double.IsFinite(real))
        {
            return JsonValue.Create(real);
        }

        return JsonValue.Create(text);
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
