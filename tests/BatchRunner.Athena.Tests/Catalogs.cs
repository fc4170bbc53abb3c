using BatchRunner.Aws.Athena;

namespace BatchRunner.Athena.Tests;

/// <summary>Catalogs the DDL tests generate from.</summary>
internal static class Catalogs
{
    public const string Store = "s3://sweeps-bucket/team/results";

    /// <summary>
    /// Two BatchJobs: one with a grid and two runs whose outputs differ (a column added, one widened from
    /// integer to double), one without parameters; and a parameter both share with different types.
    /// </summary>
    public static AthenaCatalog TwoJobs() => new(Store,
    [
        new AthenaRunSchema("mmc-sweep", "r0123456789a",
            [new("arrival_rate", AthenaType.Double), new("servers", AthenaType.Bigint)],
            [new("mean_wait", AthenaType.Double), new("served", AthenaType.Bigint), new("label", AthenaType.String)]),
        new AthenaRunSchema("mmc-sweep", "r0123456789b",
            [new("arrival_rate", AthenaType.Double), new("servers", AthenaType.Bigint)],
            [new("mean_wait", AthenaType.Double), new("served", AthenaType.Double), new("converged", AthenaType.Boolean)]),
        new AthenaRunSchema("pi-estimate", "rfedcba98765", [],
            [new("estimate", AthenaType.Double), new("samples", AthenaType.Bigint), new("servers", AthenaType.String)]),
        new AthenaRunSchema("pi-grid", "r00000000001", [new("servers", AthenaType.String)], [new("estimate", AthenaType.Double)]),
    ]);
}
