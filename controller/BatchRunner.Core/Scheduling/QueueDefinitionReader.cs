using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Scheduling;

/// <summary>
/// Reads a queue as a platform team writes it (a Queue object's spec, or the controller's configuration in local mode),
/// every error with the path of its field, so one bad queue is refused by name and never stops the others:
/// <code>
/// backends: [kubernetes, aws-batch]
/// quotas: {kubernetes: {indexes: 100, cpu: "64", memory: 256Gi}}
/// tenants: {team-a: 2, team-b: 1}      # weights; an unlisted tenant has defaultWeight
/// defaultWeight: 1
/// usageHalfLifeSeconds: 3600
/// priorityClasses: {urgent: 1000}     # besides low (-100), normal (0) and high (100)
/// namespaces: [team-a, team-b]         # who may use it; left out, every namespace
/// kueueLocalQueue: research            # Kueue admits its Kubernetes work instead (clusters running Kueue)
/// overflow: {afterSeconds: 300}        # waiting indexes go to the next backend when the wait passes this
/// </code>
/// </summary>
public static class QueueDefinitionReader
{
    private static readonly HashSet<string> Fields = ["backends", "quotas", "tenants", "defaultWeight", "usageHalfLifeSeconds", "priorityClasses", "namespaces", "kueueLocalQueue", "overflow"];
    private static readonly HashSet<string> QuotaFields = ["indexes", "cpu", "memory"];

    /// <summary>Longest queue name: a DNS label, as a cluster-scoped object's name.</summary>
    public const int MaxNameLength = 63;

    /// <summary>The default queue: every backend the host has, no quota of its own, equal tenants, a one-hour half-life.</summary>
    public static QueueDefinition Default(IReadOnlyList<Backend> backends) =>
        new(QueueDefinition.DefaultName, backends, new Dictionary<Backend, Quota>(), new Dictionary<string, double>(), 1, TimeSpan.FromHours(1));

    /// <summary>
    /// Every queue a host was given (name, spec, where it was written), the default queue added unless one is named
    /// so; a queue that does not read is refused with its errors, and never stops the others.
    /// </summary>
    public static (IReadOnlyList<QueueDefinition> Queues, IReadOnlyDictionary<string, string> Refused) ReadAll(
        IEnumerable<(string Name, JsonNode? Spec, string Path)> given, IReadOnlyList<Backend> backends)
    {
        var queues = new List<QueueDefinition>();
        var refused = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, spec, path) in given)
        {
            var (queue, errors) = Read(name, spec, path);
            if (queue is not null)
            {
                queues.Add(queue);
            }
            else
            {
                refused[name] = string.Join("; ", errors);
            }
        }

        if (queues.All(q => q.Name != QueueDefinition.DefaultName) && !refused.ContainsKey(QueueDefinition.DefaultName))
        {
            queues.Add(Default(backends));
        }

        return (queues, refused);
    }

    public static (QueueDefinition? Queue, IReadOnlyList<SpecError> Errors) Read(string name, JsonNode? spec, string path)
    {
        var errors = new List<SpecError>();
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength || !BatchJobParser.DnsLabel().IsMatch(name))
        {
            errors.Add(new SpecError(path, $"a queue's name is a DNS label, got \"{name}\""));
        }

        if (spec is not JsonObject node)
        {
            errors.Add(new SpecError(path, "expected an object with backends and quotas"));
            return (null, errors);
        }

        foreach (var (key, _) in node)
        {
            if (!Fields.Contains(key))
            {
                errors.Add(new SpecError($"{path}.{key}", "unknown field"));
            }
        }

        var backends = new List<Backend>();
        if (node["backends"] is JsonArray list && list.Count > 0)
        {
            for (var i = 0; i < list.Count; i++)
            {
                if (list[i] is JsonValue value && value.GetValueKind() == JsonValueKind.String && Backend.TryParse(value.GetValue<string>(), out var backend))
                {
                    backends.Add(backend);
                }
                else
                {
                    errors.Add(new SpecError($"{path}.backends[{i}]", $"must be a backend name, got {list[i]?.ToJsonString() ?? "null"}"));
                }
            }
        }
        else
        {
            errors.Add(new SpecError($"{path}.backends", "required: the backends this queue's work may run on"));
        }

        var quotas = new Dictionary<Backend, Quota>();
        if (node["quotas"] is JsonObject byBackend)
        {
            foreach (var (key, value) in byBackend)
            {
                var at = $"{path}.quotas.{key}";
                if (!Backend.TryParse(key, out var backend) || !backends.Contains(backend))
                {
                    errors.Add(new SpecError(at, $"not one of this queue's backends ({string.Join(", ", backends.Select(b => b.Name))})"));
                    continue;
                }

                if (ReadQuota(value, at, errors) is { } quota)
                {
                    quotas[backend] = quota;
                }
            }
        }
        else if (node["quotas"] is not null)
        {
            errors.Add(new SpecError($"{path}.quotas", "expected an object of quotas by backend"));
        }

        var weights = new Dictionary<string, double>(StringComparer.Ordinal);
        if (node["tenants"] is JsonObject tenants)
        {
            foreach (var (tenant, value) in tenants)
            {
                if (Positive(value) is { } weight)
                {
                    weights[tenant] = weight;
                }
                else
                {
                    errors.Add(new SpecError($"{path}.tenants.{tenant}", $"a weight is a number above 0, got {value?.ToJsonString() ?? "null"}"));
                }
            }
        }
        else if (node["tenants"] is not null)
        {
            errors.Add(new SpecError($"{path}.tenants", "expected an object of weights by tenant (namespace)"));
        }

        var defaultWeight = 1.0;
        if (node["defaultWeight"] is { } given)
        {
            if (Positive(given) is { } weight)
            {
                defaultWeight = weight;
            }
            else
            {
                errors.Add(new SpecError($"{path}.defaultWeight", $"a weight is a number above 0, got {given.ToJsonString()}"));
            }
        }

        var halfLife = TimeSpan.FromHours(1);
        if (node["usageHalfLifeSeconds"] is { } life)
        {
            if (Positive(life) is { } seconds && seconds <= SpecLimits.MaxSeconds)
            {
                halfLife = TimeSpan.FromSeconds(seconds);
            }
            else
            {
                errors.Add(new SpecError($"{path}.usageHalfLifeSeconds", string.Create(CultureInfo.InvariantCulture, $"must be a number of seconds above 0 and at most {SpecLimits.MaxSeconds}, got {life.ToJsonString()}")));
            }
        }

        var classes = new Dictionary<string, int>(QueueDefinition.BuiltInPriorityClasses, StringComparer.Ordinal);
        if (node["priorityClasses"] is JsonObject named)
        {
            foreach (var (className, value) in named)
            {
                if (!BatchJobParser.DnsLabel().IsMatch(className) || className.Length > MaxNameLength)
                {
                    errors.Add(new SpecError($"{path}.priorityClasses.{className}", "a priority class's name is a DNS label"));
                }
                else if (value is JsonValue number && number.GetValueKind() == JsonValueKind.Number && number.TryGetValue<int>(out var priority)
                    && Math.Abs((long)priority) <= SpecLimits.MaxPriority)
                {
                    classes[className] = priority;
                }
                else
                {
                    errors.Add(new SpecError($"{path}.priorityClasses.{className}", string.Create(CultureInfo.InvariantCulture,
                        $"a priority is a whole number between -{SpecLimits.MaxPriority} and {SpecLimits.MaxPriority}, got {value?.ToJsonString() ?? "null"}")));
                }
            }
        }
        else if (node["priorityClasses"] is not null)
        {
            errors.Add(new SpecError($"{path}.priorityClasses", "expected an object of priorities by class name"));
        }

        HashSet<string>? namespaces = null;
        if (node["namespaces"] is JsonArray allowed)
        {
            namespaces = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < allowed.Count; i++)
            {
                if (allowed[i] is JsonValue item && item.GetValueKind() == JsonValueKind.String && BatchJobParser.DnsLabel().IsMatch(item.GetValue<string>()))
                {
                    namespaces.Add(item.GetValue<string>());
                }
                else
                {
                    errors.Add(new SpecError($"{path}.namespaces[{i}]", $"must be a namespace name, got {allowed[i]?.ToJsonString() ?? "null"}"));
                }
            }
        }
        else if (node["namespaces"] is not null)
        {
            errors.Add(new SpecError($"{path}.namespaces", "expected a list of namespace names"));
        }

        string? kueue = null;
        if (node["kueueLocalQueue"] is { } local)
        {
            if (local is JsonValue value && value.GetValueKind() == JsonValueKind.String && BatchJobParser.DnsLabel().IsMatch(value.GetValue<string>()))
            {
                kueue = value.GetValue<string>();
            }
            else
            {
                errors.Add(new SpecError($"{path}.kueueLocalQueue", $"must be the name of a Kueue LocalQueue, got {local.ToJsonString()}"));
            }
        }

        var overflow = node["overflow"] is { } rule ? ReadOverflow(rule, $"{path}.overflow", backends, errors) : null;

        return errors.Count > 0
            ? (null, errors)
            : (new QueueDefinition(name, backends, quotas, weights, defaultWeight, halfLife)
            {
                PriorityClasses = classes, Namespaces = namespaces, KueueLocalQueue = kueue, Overflow = overflow,
            }, errors);
    }

    /// <summary><c>overflow: {afterSeconds: N}</c>: needs a backend to overflow to, and a wait of 0 or more seconds.</summary>
    private static OverflowRule? ReadOverflow(JsonNode rule, string path, List<Backend> backends, List<SpecError> errors)
    {
        if (rule is not JsonObject fields)
        {
            errors.Add(new SpecError(path, "expected {afterSeconds: N}"));
            return null;
        }

        var before = errors.Count;
        foreach (var (key, _) in fields)
        {
            if (key != "afterSeconds")
            {
                errors.Add(new SpecError($"{path}.{key}", "unknown field"));
            }
        }

        if (backends.Count < 2)
        {
            errors.Add(new SpecError(path, $"overflow needs a second backend to go to; backends lists {(backends.Count == 0 ? "none" : backends[0].Name)}"));
        }

        var after = TimeSpan.Zero;
        if (fields["afterSeconds"] is not { } seconds)
        {
            errors.Add(new SpecError($"{path}.afterSeconds", "required: how long the next index may wait on a backend before waiting indexes go to the next one (0: as soon as its quota is full)"));
        }
        else if (seconds is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.GetValue<double>() is var number
            && number >= 0 && number <= SpecLimits.MaxSeconds)
        {
            after = TimeSpan.FromSeconds(number);
        }
        else
        {
            errors.Add(new SpecError($"{path}.afterSeconds", string.Create(CultureInfo.InvariantCulture, $"must be a number of seconds from 0 to {SpecLimits.MaxSeconds}, got {seconds.ToJsonString()}")));
        }

        return errors.Count > before ? null : new OverflowRule(after);
    }

    private static Quota? ReadQuota(JsonNode? node, string path, List<SpecError> errors)
    {
        if (node is not JsonObject quota)
        {
            errors.Add(new SpecError(path, "expected {indexes, cpu, memory}"));
            return null;
        }

        var before = errors.Count;
        foreach (var (key, _) in quota)
        {
            if (!QuotaFields.Contains(key))
            {
                errors.Add(new SpecError($"{path}.{key}", "unknown field"));
            }
        }

        var indexes = int.MaxValue;
        if (quota["indexes"] is { } count)
        {
            if (count is JsonValue value && value.TryGetValue<int>(out var n) && n >= 0)
            {
                indexes = n;
            }
            else
            {
                errors.Add(new SpecError($"{path}.indexes", $"must be a whole number of indexes, 0 or more, got {count.ToJsonString()}"));
            }
        }

        var milliCpu = ReadQuantity(quota, "cpu", path, "a cpu quantity such as 500m or 64", (string text, out long value) => Quantity.TryParseMilliCpu(text, out value, out _), errors);
        var memory = ReadQuantity(quota, "memory", path, "a memory quantity such as 512Mi or 256Gi", (string text, out long value) => Quantity.TryParseBytes(text, out value, out _), errors);
        return errors.Count > before ? null : new Quota(indexes, milliCpu, memory);
    }

    private delegate bool QuantityParser(string text, out long value);

    /// <summary>A quantity of the quota (no limit when left out), or an error naming it and saying what it must be.</summary>
    private static long ReadQuantity(JsonObject quota, string key, string path, string what, QuantityParser parse, List<SpecError> errors)
    {
        if (quota[key] is not { } node)
        {
            return long.MaxValue;
        }

        if (Text(node) is { } text && parse(text, out var value) && value >= 0)
        {
            return value;
        }

        errors.Add(new SpecError($"{path}.{key}", $"must be {what}, got {node.ToJsonString()}"));
        return long.MaxValue;
    }

    /// <summary>A quantity as text; a bare number (cpu: 64) is one too.</summary>
    private static string? Text(JsonNode node) => node is JsonValue value
        ? value.GetValueKind() switch
        {
            JsonValueKind.String => value.GetValue<string>(),
            JsonValueKind.Number => value.ToJsonString(),
            _ => null,
        }
        : null;

    private static double? Positive(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.GetValue<double>() is var number && number > 0 && double.IsFinite(number) ? number : null;
}
