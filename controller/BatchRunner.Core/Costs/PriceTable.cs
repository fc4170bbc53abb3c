using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Costs;

/// <summary>What one vCPU and one GiB of memory cost for an hour on a backend (in US dollars).</summary>
public sealed record Price(double VcpuHour, double GibHour);

/// <summary>
/// Prices by backend, and by capacity where a backend has more than one (<c>aws-batch/spot</c>): the cost of an
/// attempt is its billed vCPU-seconds and GiB-seconds (else its requested ones) at its backend's price. A backend
/// without a price has usage and no cost.
/// </summary>
public sealed record PriceTable(IReadOnlyDictionary<string, Price> Prices)
{
    /// <summary>When the defaults were read, and from where: a user with other rates (a region, a discount) overrides them.</summary>
    public const string DefaultsAsOf = "AWS Fargate, us-east-1, Linux/x86, as published in March 2026; Spot at 70% below on-demand (Spot rates vary: set yours)";

    /// <summary>
    /// Fargate on-demand: $0.04048 per vCPU-hour and $0.004445 per GB-hour; Spot: 30% of that. Local processes and a
    /// cluster's pods have no price of their own until one is given.
    /// </summary>
    public static PriceTable Defaults { get; } = new(new Dictionary<string, Price>(StringComparer.Ordinal)
    {
        ["aws-batch"] = new(0.04048, 0.004445),
        ["aws-batch/spot"] = new(0.04048 * 0.3, 0.004445 * 0.3),
    });

    /// <summary>The price for a backend and capacity: the capacity's own, else the backend's; null when there is none.</summary>
    public Price? For(string backend, string? capacity) =>
        capacity is { Length: > 0 } && capacity != "on-demand" && Prices.TryGetValue($"{backend}/{capacity}", out var own) ? own
        : Prices.TryGetValue(backend, out var price) ? price : null;

    /// <summary>
    /// The defaults with the entries of a price file (<c>{"aws-batch": {"vcpuHour": 0.05, "gibHour": 0.005}, "local":
    /// {...}}</c>) over them; every error names its entry.
    /// </summary>
    public static (PriceTable? Table, IReadOnlyList<string> Errors) Read(string json, string source)
    {
        var errors = new List<string>();
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            return (null, [$"{source}: not JSON: {e.Message}"]);
        }

        if (root is not JsonObject entries)
        {
            return (null, [$"{source}: expected an object of prices by backend, such as {{\"aws-batch\": {{\"vcpuHour\": 0.04048, \"gibHour\": 0.004445}}}}"]);
        }

        var prices = new Dictionary<string, Price>(Defaults.Prices, StringComparer.Ordinal);
        foreach (var (key, value) in entries)
        {
            var backend = key.Split('/')[0];
            if (!Backend.TryParse(backend, out _) || key.Count(c => c == '/') > 1 || key.EndsWith('/'))
            {
                errors.Add($"{source}: {key}: not a backend (or backend/capacity, such as aws-batch/spot)");
                continue;
            }

            if (value is not JsonObject fields)
            {
                errors.Add($"{source}: {key}: expected {{\"vcpuHour\": N, \"gibHour\": N}}");
                continue;
            }

            foreach (var (field, _) in fields)
            {
                if (field is not ("vcpuHour" or "gibHour"))
                {
                    errors.Add($"{source}: {key}.{field}: unknown field (vcpuHour, gibHour)");
                }
            }

            var vcpu = Amount(fields, "vcpuHour", key, source, errors);
            var gib = Amount(fields, "gibHour", key, source, errors);
            if (vcpu is { } v && gib is { } g)
            {
                prices[key] = new Price(v, g);
            }
        }

        return errors.Count > 0 ? (null, errors) : (new PriceTable(prices), errors);
    }

    private static double? Amount(JsonObject fields, string name, string key, string source, List<string> errors)
    {
        if (fields[name] is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.GetValue<double>() is var amount && amount >= 0 && double.IsFinite(amount))
        {
            return amount;
        }

        errors.Add(string.Create(CultureInfo.InvariantCulture, $"{source}: {key}.{name}: a price in dollars per hour, 0 or more, got {fields[name]?.ToJsonString() ?? "nothing"}"));
        return null;
    }
}
