using System.Globalization;
using BatchRunner.Core.Costs;
using BatchRunner.Local.Query;

namespace BatchRunner.Reports;

/// <summary>
/// What each attempt of a BatchJob cost, as SQL over the <c>indexes</c> view, so that <c>batchrunner cost</c> and the
/// report sum the same figures: its billed usage (else its requested usage) at its backend's price (its capacity's
/// where it has one), NULL where the backend has no price.
/// </summary>
public static class CostQuery
{
    /// <summary>
    /// A <c>WITH</c> clause defining <c>attempts</c>: every column of <c>indexes</c> for the BatchJob's attempts (one run's
    /// when <paramref name="runId"/> is given), plus <c>used_vcpu_seconds</c>, <c>used_gib_seconds</c> and <c>cost_usd</c>.
    /// </summary>
    public static string Attempts(PriceTable table, string name, string ns, string? runId)
    {
        var prices = string.Join(", ", table.Prices.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p =>
        {
            var (backend, capacity) = p.Key.IndexOf('/', StringComparison.Ordinal) is var at and >= 0 ? (p.Key[..at], p.Key[(at + 1)..]) : (p.Key, null);
            return string.Create(CultureInfo.InvariantCulture,
                $"({ResultsQueryEngine.Literal(backend)}, {(capacity is null ? "NULL" : ResultsQueryEngine.Literal(capacity))}, {p.Value.VcpuHour:R}::DOUBLE, {p.Value.GibHour:R}::DOUBLE)");
        }));
        return $"""
            WITH prices(backend, capacity, vcpu_hour, gib_hour) AS (VALUES {(prices.Length == 0 ? "(NULL, NULL, NULL::DOUBLE, NULL::DOUBLE)" : prices)}),
            priced AS (
                SELECT i.*,
                    coalesce(i.billed_vcpu_seconds, i.vcpu_seconds, 0) AS used_vcpu_seconds, coalesce(i.billed_gib_seconds, i.gib_seconds, 0) AS used_gib_seconds,
                    coalesce(own.vcpu_hour, base.vcpu_hour) AS price_vcpu_hour, coalesce(own.gib_hour, base.gib_hour) AS price_gib_hour
                FROM indexes i
                LEFT JOIN prices own ON own.backend = i.backend AND own.capacity = i.capacity AND i.capacity <> 'on-demand'
                LEFT JOIN prices base ON base.backend = i.backend AND base.capacity IS NULL
                WHERE i.batchjob = {ResultsQueryEngine.Literal(name)} AND i.namespace = {ResultsQueryEngine.Literal(ns)}{(runId is null ? "" : $" AND i.run = {ResultsQueryEngine.Literal(runId)}")}),
            attempts AS (
                SELECT * EXCLUDE (price_vcpu_hour, price_gib_hour),
                    (used_vcpu_seconds * price_vcpu_hour + used_gib_seconds * price_gib_hour) / 3600 AS cost_usd
                FROM priced)
            """;
    }

    /// <summary>The sums of <c>attempts</c> as one select list: a group with any attempt without a price has no cost.</summary>
    public const string Sums = """
        count(*) AS attempts, sum(used_vcpu_seconds) / 3600 AS vcpu_hours, sum(used_gib_seconds) / 3600 AS gib_hours,
        CASE WHEN bool_or(cost_usd IS NULL) THEN NULL ELSE sum(cost_usd) END AS cost_usd
        """;
}
