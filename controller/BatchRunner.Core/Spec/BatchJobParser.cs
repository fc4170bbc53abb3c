using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;

namespace BatchRunner.Core.Spec;

/// <summary>
/// Turns a BatchJob document (YAML or JSON) into a resolved <see cref="BatchJob"/>, or into every reason it is
/// not one, each named by its field path. The same parser serves the CLI, the custom resource and the queue.
/// </summary>
public static partial class BatchJobParser
{
    /// <summary>Column names of the ledger; a sweep parameter may not take one of them.</summary>
    public static readonly IReadOnlySet<string> ReservedParameterNames = Store.LedgerColumns.Names;

    private static readonly HashSet<string> TopLevelFields = ["apiVersion", "kind", "metadata", "spec", "status"];
    private static readonly HashSet<string> MetadataFields = ["name", "namespace", "labels", "annotations"];

    // Written by the API server; accepted so that `kubectl get -o yaml` output parses, and otherwise ignored.
    private static readonly HashSet<string> ServerMetadataFields =
    [
        "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
        "managedFields", "finalizers", "ownerReferences", "selfLink",
    ];

    private static readonly HashSet<string> SpecFields =
    [
        "image", "command", "args", "env", "resources", "completions", "parallelism", "sweep", "retry",
        "timeoutSeconds", "deadlineSeconds", "backend", "queue", "priority", "reuse", "budget", "results",
    ];

    /// <summary>Parses one document given as UTF-8 bytes: the size limit and the encoding are checked first.</summary>
    /// <param name="defaultBackend">The backend of a document that names none: the door's own (the CLI's is local;
    /// a cluster's, like the CRD's default, kubernetes).</param>
    public static ParseResult Parse(ReadOnlySpan<byte> utf8, Backend? defaultBackend = null)
    {
        if (utf8.Length > SpecLimits.MaxDocumentBytes)
        {
            return Fail("", $"document is {utf8.Length:N0} bytes, more than the limit of {SpecLimits.MaxDocumentBytes:N0}");
        }

        string text;
        try
        {
            text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(utf8);
        }
        catch (DecoderFallbackException)
        {
            return Fail("", "document is not valid UTF-8 text");
        }

        return Parse(text, defaultBackend);
    }

    /// <summary>Parses exactly one YAML or JSON document.</summary>
    public static ParseResult Parse(string text, Backend? defaultBackend = null)
    {
        if (Encoding.UTF8.GetByteCount(text) > SpecLimits.MaxDocumentBytes)
        {
            return Fail("", $"document is more than the limit of {SpecLimits.MaxDocumentBytes:N0} bytes");
        }

        if (text.Contains('\0', StringComparison.Ordinal))
        {
            return Fail("", "document contains NUL bytes; it is not text");
        }

        IReadOnlyList<JsonNode?> documents;
        try
        {
            documents = YamlTree.LoadDocuments(text.TrimStart('\uFEFF'));
        }
        catch (YamlException e)
        {
            return Fail("", $"not valid YAML or JSON at line {e.Start.Line}, column {e.Start.Column}: {InnermostMessage(e)}");
        }

        return documents.Count switch
        {
            0 => Fail("", "document is empty"),
            1 => FromNode(documents[0], defaultBackend),
            _ => Fail("", $"expected one document, found {documents.Count} (separated by ---)"),
        };
    }

    /// <summary>Binds an already parsed JSON tree, such as a custom resource read from the API server.</summary>
    public static ParseResult FromNode(JsonNode? root, Backend? defaultBackend = null)
    {
        var binder = new Binder(defaultBackend);
        var job = binder.BindJob(root);
        return new ParseResult(binder.Errors.Count == 0 ? job : null, binder.Errors);
    }

    /// <summary>
    /// The document as written, as compact JSON: YAML's layout and comments dropped, nothing resolved or defaulted,
    /// scalars typed by the same rules the parser uses. Null when the text is not one readable document.
    /// </summary>
    public static string? ToJson(string text)
    {
        try
        {
            var documents = YamlTree.LoadDocuments(text.TrimStart('\uFEFF'));
            return documents is [{ } document] ? document.ToJsonString() : null;
        }
        catch (YamlException)
        {
            return null;
        }
    }

    private static ParseResult Fail(string path, string message) => new(null, [new SpecError(path, message)]);

    private static string InnermostMessage(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e.Message.Split(": ", 2) is [var head, var rest] && head.StartsWith('(') ? rest : e.Message;
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    internal static partial Regex DnsLabel();

    /// <summary>Whether <paramref name="name"/> could be a BatchJob's <c>metadata.name</c> (a DNS label): what commands that take a name check first.</summary>
    public static bool IsBatchJobName(string name) => name.Length is > 0 and <= SpecLimits.MaxNameLength && DnsLabel().IsMatch(name);

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    internal static partial Regex Identifier();

    /// <summary>Walks the tree once, collecting every error rather than stopping at the first.</summary>
    private sealed class Binder(Backend? defaultBackend)
    {
        public List<SpecError> Errors { get; } = [];

        public BatchJob? BindJob(JsonNode? root)
        {
            if (root is not JsonObject document)
            {
                Error("", $"expected a BatchJob object, got {Describe(root)}");
                return null;
            }

            RejectUnknown(document, "", TopLevelFields);
            var apiVersion = ReadString(document, "apiVersion", "apiVersion", required: true);
            if (apiVersion is not null && apiVersion != BatchJob.ApiVersion)
            {
                Error("apiVersion", $"must be {BatchJob.ApiVersion}, got \"{apiVersion}\"");
            }

            var kind = ReadString(document, "kind", "kind", required: true);
            if (kind is not null && kind != BatchJob.KindName)
            {
                Error("kind", $"must be {BatchJob.KindName}, got \"{kind}\"");
            }

            var metadata = BindMetadata(RequireObject(document, "metadata", "metadata"));
            var spec = BindSpec(RequireObject(document, "spec", "spec"));
            return metadata is null || spec is null ? null : new BatchJob(metadata, spec);
        }

        private ObjectMeta? BindMetadata(JsonObject? node)
        {
            if (node is null)
            {
                return null;
            }

            RejectUnknown(node, "metadata", MetadataFields, ServerMetadataFields);
            var name = ReadString(node, "name", "metadata.name", required: true);
            if (name is not null)
            {
                CheckDnsLabel(name, "metadata.name", SpecLimits.MaxNameLength);
            }

            var ns = ReadString(node, "namespace", "metadata.namespace", required: false) ?? ObjectMeta.DefaultNamespace;
            CheckDnsLabel(ns, "metadata.namespace", 63);
            var labels = ReadStringMap(node, "labels", "metadata.labels");
            var annotations = ReadStringMap(node, "annotations", "metadata.annotations");
            return name is null ? null : new ObjectMeta(name, ns, labels, annotations);
        }

        private BatchJobSpec? BindSpec(JsonObject? node)
        {
            if (node is null)
            {
                return null;
            }

            const string path = "spec";
            RejectUnknown(node, path, SpecFields);
            var errorsBefore = Errors.Count;

            var backend = ReadBackend(node);
            var image = ReadString(node, "image", "spec.image", required: false);
            if (image is not null && (image.Length == 0 || image.Any(char.IsWhiteSpace)))
            {
                Error("spec.image", $"must be an image reference without spaces, got \"{image}\"");
            }

            if (node["image"] is null && backend is { } named && named != Backend.Local)
            {
                // Every backend but local runs containers.
                Error("spec.image", $"required for backend {named.Name}");
            }

            var command = ReadStringList(node, "command", "spec.command");
            if (node["command"] is null or JsonArray { Count: 0 })
            {
                // Every backend wraps the command to hand each index its parameters; an image's entrypoint cannot be wrapped.
                Error("spec.command", "required (BatchRunner runs it with each index's parameters; an image's entrypoint cannot be wrapped, so name it here)");
            }

            var args = ReadStringList(node, "args", "spec.args");
            var env = ReadEnv(node);
            var resources = ReadResources(node);
            var errorsBeforeSweep = Errors.Count;
            var sweep = ReadSweep(node);
            var sweepSize = sweep is null ? (long?)null : SweepSize(sweep);

            // A sweep or completions already reported invalid has no size to compare with; saying so again misleads.
            var sweepValid = Errors.Count == errorsBeforeSweep;
            var completions = ReadInt(node, "completions", "spec.completions", 1, SpecLimits.MaxIndexes);
            var completionsValid = completions is not null || node["completions"] is null;
            if (sweepValid && sweepSize is { } size && completions is { } given && given != size)
            {
                Error("spec.completions", $"must equal the sweep size {size} (or be left out), got {given}");
            }

            var resolvedCompletions = (int)Math.Min(sweepSize ?? completions ?? 1, SpecLimits.MaxIndexes);
            var parallelism = ReadInt(node, "parallelism", "spec.parallelism", 1, SpecLimits.MaxParallelism);
            if (sweepValid && completionsValid && parallelism > resolvedCompletions)
            {
                Error("spec.parallelism", $"must be <= spec.completions ({resolvedCompletions}), got {parallelism}");
            }

            var retry = ReadRetry(node);
            var timeout = ReadPositiveSeconds(node, "timeoutSeconds", "spec.timeoutSeconds");
            var deadline = ReadPositiveSeconds(node, "deadlineSeconds", "spec.deadlineSeconds");
            var queue = ReadQueue(node);
            var (priority, priorityClass) = ReadPriority(node);
            var reuse = ReadReuse(node);
            var budget = ReadBudget(node);
            var results = ReadResults(node);

            if (Errors.Count > errorsBefore)
            {
                return null;
            }

            return new BatchJobSpec
            {
                Image = image,
                Command = command,
                Args = args,
                Env = env,
                Resources = resources,
                Completions = resolvedCompletions,
                Parallelism = parallelism ?? 1,
                Sweep = sweep,
                Retry = retry,
                TimeoutSeconds = timeout,
                DeadlineSeconds = deadline,
                Backend = backend!.Value,
                Queue = queue,
                Priority = priority,
                PriorityClass = priorityClass,
                Reuse = reuse,
                Budget = budget,
                Results = results,
            };
        }

        /// <summary>
        /// A backend's name, checked for form only: which backends exist is the host's to say (its registry), at its
        /// door, so a backend registered by a host is written in a spec like the built-in ones.
        /// </summary>
        private Backend? ReadBackend(JsonObject node)
        {
            var text = ReadString(node, "backend", "spec.backend", required: false);
            if (text is null)
            {
                return defaultBackend ?? Backend.Local;
            }

            if (!Backend.TryParse(text, out var backend))
            {
                Error("spec.backend", $"must be a backend name (lowercase letters, digits and '-', such as {Backend.Local}, {Backend.Kubernetes} or {Backend.AwsBatch}); got \"{text}\"");
                return null;
            }

            return backend;
        }

        private List<EnvVar> ReadEnv(JsonObject node)
        {
            var result = new List<EnvVar>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (item, path) in ReadArray(node, "env", "spec.env"))
            {
                if (item is not JsonObject entry)
                {
                    Error(path, $"expected an object with name and value, got {Describe(item)}");
                    continue;
                }

                RejectUnknown(entry, path, ["name", "value"]);
                var name = ReadString(entry, "name", path + ".name", required: true);
                var value = ReadString(entry, "value", path + ".value", required: false) ?? "";
                if (name is null)
                {
                    continue;
                }

                if (!Identifier().IsMatch(name))
                {
                    Error(path + ".name", $"must be a valid environment variable name (letters, digits, _), got \"{name}\"");
                }
                else if (name.StartsWith("BATCHRUNNER_", StringComparison.OrdinalIgnoreCase))
                {
                    Error(path + ".name", $"the prefix BATCHRUNNER_ is reserved for the runner's own variables, got \"{name}\"");
                }
                else if (!seen.Add(name))
                {
                    Error(path + ".name", $"duplicate variable \"{name}\"");
                }
                else
                {
                    result.Add(new EnvVar(name, value));
                }
            }

            return result;
        }

        private ResourceRequests ReadResources(JsonObject node)
        {
            var resources = OptionalObject(node, "resources", "spec.resources");
            if (resources is null)
            {
                return ResourceRequests.Default;
            }

            RejectUnknown(resources, "spec.resources", ["cpu", "memory"]);
            var cpu = ReadQuantityText(resources, "cpu", "spec.resources.cpu") ?? ResourceRequests.Default.Cpu;
            var memory = ReadQuantityText(resources, "memory", "spec.resources.memory") ?? ResourceRequests.Default.Memory;
            var milliCpu = Quantity.TryParseMilliCpu(cpu, out var mc, out var cpuError) ? mc : Invalid("spec.resources.cpu", cpuError);
            var bytes = Quantity.TryParseBytes(memory, out var b, out var memoryError) ? b : Invalid("spec.resources.memory", memoryError);
            return new ResourceRequests(cpu, memory, milliCpu, bytes);
        }

        private long Invalid(string path, string message)
        {
            Error(path, message);
            return 0;
        }

        private string? ReadQuantityText(JsonObject node, string key, string path) => node[key] switch
        {
            null when !node.ContainsKey(key) => null,
            JsonValue value when value.TryGetValue<string>(out var text) => text,
            JsonValue value when value.GetValueKind() == JsonValueKind.Number => value.ToJsonString(),
            var other => InvalidText(path, $"expected a quantity such as \"500m\" or \"2Gi\", got {Describe(other)}"),
        };

        private string? InvalidText(string path, string message)
        {
            Error(path, message);
            return null;
        }

        private SweepSpec? ReadSweep(JsonObject node)
        {
            var sweep = OptionalObject(node, "sweep", "spec.sweep");
            if (sweep is null)
            {
                return null;
            }

            RejectUnknown(sweep, "spec.sweep", ["grid", "list", "repeats", "seed"]);
            var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var grid = ReadGrid(sweep, names);
            var list = ReadPointList(sweep, names);
            if (grid.Count > 0 && list.Count > 0)
            {
                Error("spec.sweep", "give either grid or list, not both");
            }

            if (names.Count > SpecLimits.MaxParameters)
            {
                Error("spec.sweep", $"has {names.Count} parameters, more than the limit of {SpecLimits.MaxParameters}");
            }

            var repeats = ReadInt(sweep, "repeats", "spec.sweep.repeats", 1, SpecLimits.MaxRepeats) ?? 1;
            var seed = ReadLong(sweep, "seed", "spec.sweep.seed", 0, long.MaxValue) ?? 0;
            var result = new SweepSpec(grid, list, repeats, seed);
            var size = SweepSize(result);
            if (size > SpecLimits.MaxIndexes)
            {
                Error("spec.sweep", $"expands to {size:N0} indexes, more than the limit of {SpecLimits.MaxIndexes:N0}");
            }

            return result;
        }

        private List<GridAxis> ReadGrid(JsonObject sweep, HashSet<string> names)
        {
            var grid = OptionalObject(sweep, "grid", "spec.sweep.grid");
            var axes = new List<GridAxis>();
            if (grid is null)
            {
                return axes;
            }

            if (grid.Count == 0)
            {
                Error("spec.sweep.grid", "must name at least one parameter");
            }

            foreach (var (name, valuesNode) in grid)
            {
                var path = "spec.sweep.grid." + name;
                CheckParameterName(name, path, names);
                if (valuesNode is not JsonArray values || values.Count == 0)
                {
                    Error(path, $"expected a non-empty list of values, got {Describe(valuesNode)}");
                    continue;
                }

                var parsed = new List<ParameterValue>(values.Count);
                var distinct = new HashSet<string>(StringComparer.Ordinal);
                for (var i = 0; i < values.Count; i++)
                {
                    if (ReadScalar(values[i], $"{path}[{i}]") is { } value)
                    {
                        if (!distinct.Add(value.Json))
                        {
                            Error($"{path}[{i}]", $"duplicate value {value.Json}");
                        }

                        parsed.Add(value);
                    }
                }

                axes.Add(new GridAxis(name, parsed));
            }

            // The API server (and any JSON round trip) reorders map keys, so document order cannot decide which
            // index gets which parameters: axes are ordered by name, the same through every door.
            axes.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            return axes;
        }

        private List<IReadOnlyList<Parameter>> ReadPointList(JsonObject sweep, HashSet<string> names)
        {
            var points = new List<IReadOnlyList<Parameter>>();
            var listNode = sweep["list"];
            if (listNode is null)
            {
                return points;
            }

            if (listNode is not JsonArray list || list.Count == 0)
            {
                Error("spec.sweep.list", $"expected a non-empty list of parameter sets, got {Describe(listNode)}");
                return points;
            }

            var listNames = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase); // as first written
            for (var i = 0; i < list.Count; i++)
            {
                var path = $"spec.sweep.list[{i}]";
                if (list[i] is not JsonObject entry || entry.Count == 0)
                {
                    Error(path, $"expected an object of parameter values, got {Describe(list[i])}");
                    continue;
                }

                var point = new List<Parameter>(entry.Count);
                foreach (var (name, valueNode) in entry)
                {
                    if (listNames.TryAdd(name, name))
                    {
                        CheckParameterName(name, $"{path}.{name}", names);
                    }
                    else if (listNames[name] != name)
                    {
                        Error($"{path}.{name}", $"parameter \"{name}\" is also written \"{listNames[name]}\" (names are compared ignoring case)");
                    }

                    if (ReadScalar(valueNode, $"{path}.{name}") is { } value)
                    {
                        point.Add(new Parameter(name, value));
                    }
                }

                point.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
                points.Add(point);
            }

            return points;
        }

        private void CheckParameterName(string name, string path, HashSet<string> names)
        {
            if (!Identifier().IsMatch(name))
            {
                Error(path, "parameter names must be letters, digits and _ (they become SQL columns)");
            }
            else if (ReservedParameterNames.Contains(name))
            {
                Error(path, $"\"{name}\" is reserved for a ledger column; rename the parameter");
            }
            else if (!names.Add(name))
            {
                Error(path, $"parameter \"{name}\" is given twice (names are compared ignoring case)");
            }
        }

        private ParameterValue? ReadScalar(JsonNode? node, string path)
        {
            if (node is JsonValue value)
            {
                switch (value.GetValueKind())
                {
                    case JsonValueKind.String:
                        return ParameterValue.FromString(value.GetValue<string>());
                    case JsonValueKind.True or JsonValueKind.False:
                        return ParameterValue.FromBoolean(value.GetValue<bool>());
                    case JsonValueKind.Number when value.TryGetValue<long>(out var integer):
                        return ParameterValue.FromInteger(integer);
                    case JsonValueKind.Number when value.TryGetValue<double>(out var real) && double.IsFinite(real):
                        return ParameterValue.FromDouble(real);
                    case JsonValueKind.Number when value.TryGetValue<decimal>(out var exact):
                        return ParameterValue.FromDouble((double)exact);
                }
            }

            Error(path, $"expected a number, string or boolean, got {Describe(node)}");
            return null;
        }

        private RetryPolicy ReadRetry(JsonObject node)
        {
            var retry = OptionalObject(node, "retry", "spec.retry");
            if (retry is null)
            {
                return RetryPolicy.Default;
            }

            RejectUnknown(retry, "spec.retry", ["attempts", "backoffSeconds", "maxBackoffSeconds"]);
            var attempts = ReadInt(retry, "attempts", "spec.retry.attempts", 1, SpecLimits.MaxAttempts) ?? RetryPolicy.Default.Attempts;
            var backoff = ReadNumber(retry, "backoffSeconds", "spec.retry.backoffSeconds", 0, SpecLimits.MaxSeconds) ?? RetryPolicy.Default.BackoffSeconds;
            var maxBackoff = ReadNumber(retry, "maxBackoffSeconds", "spec.retry.maxBackoffSeconds", 0, SpecLimits.MaxSeconds) ?? Math.Max(backoff, RetryPolicy.Default.MaxBackoffSeconds);
            if (maxBackoff < backoff)
            {
                Error("spec.retry.maxBackoffSeconds", $"must be >= spec.retry.backoffSeconds ({backoff}), got {maxBackoff}");
            }

            return new RetryPolicy(attempts, backoff, maxBackoff);
        }

        private ResultsSpec ReadResults(JsonObject node)
        {
            var results = OptionalObject(node, "results", "spec.results");
            if (results is null)
            {
                return ResultsSpec.Default;
            }

            RejectUnknown(results, "spec.results", ["uri", "format"]);
            var uri = ReadString(results, "uri", "spec.results.uri", required: false);
            if (uri is not null && !uri.StartsWith("s3://", StringComparison.Ordinal) && !uri.StartsWith("file://", StringComparison.Ordinal))
            {
                Error("spec.results.uri", $"must start with s3:// or file://, got \"{uri}\"");
            }

            var formatText = ReadString(results, "format", "spec.results.format", required: false);
            var format = formatText switch
            {
                null or "jsonl" => ResultsFormat.Jsonl,
                "csv" => ResultsFormat.Csv,
                _ => InvalidFormat(formatText),
            };
            return new ResultsSpec(uri, format);
        }

        private ResultsFormat InvalidFormat(string text)
        {
            Error("spec.results.format", $"must be one of jsonl, csv; got \"{text}\"");
            return ResultsFormat.Jsonl;
        }

        /// <summary>Whether an index may take an earlier identical point's result: true unless written false.</summary>
        private bool? ReadReuse(JsonObject node)
        {
            var value = node["reuse"];
            if (value is null)
            {
                return null;
            }

            if (value is JsonValue scalar && scalar.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
            {
                // Written true is the default: the same document as leaving it out.
                return scalar.GetValue<bool>() ? null : false;
            }

            Error("spec.reuse", $"expected true or false, got {Describe(value)}");
            return null;
        }

        /// <summary>A budget in US dollars: <c>{usd: 25}</c>, more than 0; null when left out.</summary>
        private double? ReadBudget(JsonObject node)
        {
            if (OptionalObject(node, "budget", "spec.budget") is not { } budget)
            {
                return null;
            }

            RejectUnknown(budget, "spec.budget", ["usd"]);
            if (budget["usd"] is null)
            {
                Error("spec.budget.usd", "required: the most the run may cost, in US dollars (such as 25 or 2.50)");
                return null;
            }

            return ReadNumber(budget, "usd", "spec.budget.usd", double.Epsilon, SpecLimits.MaxBudgetUsd);
        }

        /// <summary>A queue's name, a DNS label; null (the default queue) when left out.</summary>
        private string? ReadQueue(JsonObject node)
        {
            var text = ReadString(node, "queue", "spec.queue", required: false);
            if (text is not null && (text.Length > SpecLimits.MaxQueueNameLength || !DnsLabel().IsMatch(text)))
            {
                Error("spec.queue", $"must be a queue name (lowercase letters, digits and '-', at most {SpecLimits.MaxQueueNameLength}); got \"{text}\"");
            }

            return text;
        }

        /// <summary>A priority: a whole number, or the name of a priority class of its queue.</summary>
        private (int Value, string? Class) ReadPriority(JsonObject node)
        {
            if (node["priority"] is JsonValue value && value.GetValueKind() == JsonValueKind.String)
            {
                var name = value.GetValue<string>();
                if (name.Length > SpecLimits.MaxQueueNameLength || !DnsLabel().IsMatch(name))
                {
                    Error("spec.priority", $"must be a whole number or a priority class's name (lowercase letters, digits and '-'); got \"{name}\"");
                }

                return (0, name);
            }

            return (ReadInt(node, "priority", "spec.priority", -SpecLimits.MaxPriority, SpecLimits.MaxPriority) ?? 0, null);
        }

        private double? ReadPositiveSeconds(JsonObject node, string key, string path) =>
            ReadNumber(node, key, path, double.Epsilon, SpecLimits.MaxSeconds);

        // ---- primitives -------------------------------------------------------------------------------------

        private void Error(string path, string message) => Errors.Add(new SpecError(path, message));

        private void RejectUnknown(JsonObject node, string path, HashSet<string> known, HashSet<string>? ignored = null)
        {
            foreach (var (key, _) in node)
            {
                if (!known.Contains(key) && (ignored is null || !ignored.Contains(key)))
                {
                    var closest = known.FirstOrDefault(k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase));
                    Error(path.Length == 0 ? key : $"{path}.{key}", closest is null ? "unknown field" : $"unknown field (did you mean {closest}?)");
                }
            }
        }

        private JsonObject? RequireObject(JsonObject parent, string key, string path)
        {
            if (parent[key] is null)
            {
                Error(path, "required");
                return null;
            }

            return OptionalObject(parent, key, path);
        }

        private JsonObject? OptionalObject(JsonObject parent, string key, string path)
        {
            var node = parent[key];
            if (node is null || node is JsonObject)
            {
                return (JsonObject?)node;
            }

            Error(path, $"expected an object, got {Describe(node)}");
            return null;
        }

        private string? ReadString(JsonObject parent, string key, string path, bool required)
        {
            var node = parent[key];
            if (node is null)
            {
                if (required)
                {
                    Error(path, "required");
                }

                return null;
            }

            if (node is JsonValue value && value.GetValueKind() == JsonValueKind.String)
            {
                return value.GetValue<string>();
            }

            Error(path, $"expected a string, got {Describe(node)}{QuoteHint(node)}");
            return null;
        }

        private IReadOnlyList<(JsonNode? Item, string Path)> ReadArray(JsonObject parent, string key, string path)
        {
            var node = parent[key];
            if (node is null)
            {
                return [];
            }

            if (node is not JsonArray array)
            {
                Error(path, $"expected a list, got {Describe(node)}");
                return [];
            }

            return array.Select((item, i) => (item, $"{path}[{i}]")).ToList();
        }

        private List<string> ReadStringList(JsonObject parent, string key, string path)
        {
            var result = new List<string>();
            foreach (var (item, itemPath) in ReadArray(parent, key, path))
            {
                if (item is JsonValue value && value.GetValueKind() == JsonValueKind.String)
                {
                    result.Add(value.GetValue<string>());
                }
                else
                {
                    Error(itemPath, $"expected a string, got {Describe(item)}{QuoteHint(item)}");
                }
            }

            return result;
        }

        private Dictionary<string, string> ReadStringMap(JsonObject parent, string key, string path)
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            var map = OptionalObject(parent, key, path);
            if (map is null)
            {
                return result;
            }

            // In name order, as the API server returns a map: the same labels give the same model through every door.
            foreach (var name in map.Select(p => p.Key).Order(StringComparer.Ordinal).ToList())
            {
                if (ReadString(map, name, $"{path}.{name}", required: true) is { } value)
                {
                    result[name] = value;
                }
            }

            return result;
        }

        private int? ReadInt(JsonObject parent, string key, string path, int min, int max) =>
            (int?)ReadLong(parent, key, path, min, max);

        private long? ReadLong(JsonObject parent, string key, string path, long min, long max)
        {
            var node = parent[key];
            if (node is null)
            {
                return null;
            }

            if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.Number || !TryGetWholeNumber(value, out var number))
            {
                Error(path, $"expected an integer, got {Describe(node)}");
                return null;
            }

            if (number < min)
            {
                Error(path, $"must be >= {min}, got {number}");
                return null;
            }

            if (number > max)
            {
                Error(path, $"must be <= {max}, got {number}");
                return null;
            }

            return number;
        }

        private double? ReadNumber(JsonObject parent, string key, string path, double min, double max = double.MaxValue)
        {
            var node = parent[key];
            if (node is null)
            {
                return null;
            }

            if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.Number || !TryGetDouble(value, out var number))
            {
                Error(path, $"expected a number, got {Describe(node)}");
                return null;
            }

            if (number < min)
            {
                Error(path, min == double.Epsilon ? $"must be > 0, got {number}" : $"must be >= {min}, got {number}");
                return null;
            }

            if (number > max)
            {
                Error(path, string.Create(CultureInfo.InvariantCulture, $"must be <= {max:0.##}{(max == SpecLimits.MaxSeconds ? " (30 days)" : "")}, got {number}"));
                return null;
            }

            return number;
        }

        // 2.0 is the integer 2, as kubectl makes it on the way to the API server: both doors accept the same documents.
        private static bool TryGetWholeNumber(JsonValue value, out long number)
        {
            if (value.TryGetValue(out number))
            {
                return true;
            }

            // A tree built in code (not parsed from text) may hold an int.
            if (value.TryGetValue<int>(out var small))
            {
                number = small;
                return true;
            }

            if (TryGetDouble(value, out var real) && real == Math.Floor(real) && Math.Abs(real) < 9_007_199_254_740_992d)
            {
                number = (long)real;
                return true;
            }

            return false;
        }

        // A JSON value built from a YAML integer holds a long, which TryGetValue<double> does not convert.
        private static bool TryGetDouble(JsonValue value, out double number)
        {
            if (value.TryGetValue<long>(out var integer))
            {
                number = integer;
                return true;
            }

            if (value.TryGetValue<int>(out var small))
            {
                number = small;
                return true;
            }

            return value.TryGetValue(out number) && double.IsFinite(number);
        }

        private void CheckDnsLabel(string value, string path, int maxLength)
        {
            if (value.Length > maxLength)
            {
                Error(path, $"must be at most {maxLength} characters, got {value.Length}");
            }
            else if (!DnsLabel().IsMatch(value))
            {
                Error(path, $"must be lowercase letters, digits and '-', starting and ending with a letter or digit, got \"{value}\"");
            }
        }

        private static string QuoteHint(JsonNode? node) =>
            node is JsonValue value && value.GetValueKind() is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False
                ? $" (quote it: \"{(value.GetValueKind() == JsonValueKind.Number ? NumberText(value) : value.ToJsonString())}\")"
                : "";

        /// <summary>A number as written: <c>2.0</c> stays <c>2.0</c> rather than printing as the integer <c>2</c>.</summary>
        private static string NumberText(JsonValue value) =>
            !value.TryGetValue<long>(out _) && value.TryGetValue<double>(out var real) ? ParameterValue.FromDouble(real).Json : value.ToJsonString();

        internal static string Describe(JsonNode? node) => node switch
        {
            null => "null",
            JsonObject { Count: 0 } => "an empty object",
            JsonObject => "an object",
            JsonArray { Count: 0 } => "an empty list",
            JsonArray => "a list",
            JsonValue value => value.GetValueKind() switch
            {
                JsonValueKind.String => $"the string \"{Truncate(value.GetValue<string>())}\"",
                JsonValueKind.Number => $"the number {NumberText(value)}",
                JsonValueKind.True => "true",
                JsonValueKind.False => "false",
                _ => value.ToJsonString(),
            },
            _ => node.GetType().Name,
        };

        private static string Truncate(string text) => text.Length <= 40 ? text : text[..40] + "…";
    }

    /// <summary>Number of indexes a sweep expands to, computed without overflow.</summary>
    public static long SweepSize(SweepSpec sweep)
    {
        long points = sweep.List.Count > 0 ? sweep.List.Count : 1;
        foreach (var axis in sweep.Grid)
        {
            points = Math.Min(points * Math.Max(axis.Values.Count, 1), (long)int.MaxValue * 2);
        }

        return Math.Min(points * sweep.Repeats, long.MaxValue / 2);
    }
}
