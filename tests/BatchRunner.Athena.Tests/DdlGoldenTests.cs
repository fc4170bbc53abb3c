using BatchRunner.Aws.Athena;

namespace BatchRunner.Athena.Tests;

/// <summary>
/// The generated DDL, statement by statement, against files under Golden/. Set BATCHRUNNER_UPDATE_GOLDEN=1 to
/// rewrite them after a deliberate change (then read the diff).
/// </summary>
public sealed class DdlGoldenTests
{
    [Theory]
    [InlineData("two-jobs")]
    [InlineData("empty")]
    public void Ddl_matches_its_golden_file(string name)
    {
        var catalog = name == "empty" ? new AthenaCatalog(Catalogs.Store, []) : Catalogs.TwoJobs();
        var text = Render(AthenaDdl.Generate(catalog, "batchrunner"));
        var golden = Path.Combine(AppContext.BaseDirectory, "Golden", name + ".sql");
        if (Environment.GetEnvironmentVariable("BATCHRUNNER_UPDATE_GOLDEN") == "1")
        {
            var source = Path.Combine(SourceDirectory(), "Golden", name + ".sql");
            File.WriteAllText(source, text);
        }

        Assert.Equal(File.ReadAllText(golden), text);
    }

    [Fact]
    public void Every_table_is_projected_by_run_without_a_crawler()
    {
        var statements = AthenaDdl.Generate(Catalogs.TwoJobs(), "batchrunner");
        var tables = statements.Where(s => s.Sql.StartsWith("CREATE EXTERNAL TABLE", StringComparison.Ordinal)).ToList();
        Assert.Equal(8, tables.Count);
        Assert.All(tables, t =>
        {
            Assert.Contains("'projection.enabled' = 'true'", t.Sql, StringComparison.Ordinal);
            Assert.Contains("'projection.run.type' = 'injected'", t.Sql, StringComparison.Ordinal);
            Assert.Contains("'storage.location.template' = 's3://sweeps-bucket/team/results/batchjob=", t.Sql, StringComparison.Ordinal);
            // The BatchJob is the table's own (a literal in the views), the run its partition: neither is a data column.
            Assert.DoesNotContain("`batchjob` ", t.Sql, StringComparison.Ordinal);
            Assert.DoesNotContain("`run` string,", t.Sql, StringComparison.Ordinal);
        });
        Assert.DoesNotContain(statements, s => s.Sql.Contains("MSCK", StringComparison.OrdinalIgnoreCase) || s.Sql.Contains("ADD PARTITION", StringComparison.OrdinalIgnoreCase));
        Assert.False(statements[0].NeedsDatabase);
        Assert.All(statements.Skip(1), s => Assert.True(s.NeedsDatabase));
    }

    [Fact]
    public void Views_name_the_runs_they_read_so_injected_projection_is_satisfied()
    {
        var statements = AthenaDdl.Generate(Catalogs.TwoJobs(), "batchrunner");
        var results = statements.Single(s => s.Purpose == "view results").Sql;
        Assert.Matches("FROM \"results_mmc_sweep_[0-9a-f]{6}\"\nWHERE \"run\" IN \\('r0123456789a'\\)", results);
        Assert.Matches("FROM \"results_mmc_sweep_[0-9a-f]{6}\"\nWHERE \"run\" IN \\('r0123456789b'\\)", results);
        Assert.Contains("FROM \"results_pi_estimate\"\nWHERE \"run\" IN ('rfedcba98765')", results, StringComparison.Ordinal);
    }

    [Fact]
    public void Runs_that_typed_a_column_differently_get_a_table_each_with_their_files_types()
    {
        // Athena reads a Parquet INT64 as bigint only, never as double: one table may not hold both runs.
        var statements = AthenaDdl.Generate(Catalogs.TwoJobs(), "batchrunner");
        var mmc = statements.Where(s => s.Sql.StartsWith("CREATE EXTERNAL TABLE `results_mmc_sweep_", StringComparison.Ordinal)).Select(s => s.Sql).ToList();
        Assert.Equal(2, mmc.Count);
        Assert.Single(mmc, t => t.Contains("`served` bigint", StringComparison.Ordinal) && t.Contains("`label` string", StringComparison.Ordinal) && !t.Contains("converged", StringComparison.Ordinal));
        Assert.Single(mmc, t => t.Contains("`served` double", StringComparison.Ordinal) && t.Contains("`converged` boolean", StringComparison.Ordinal) && !t.Contains("label", StringComparison.Ordinal));
        // The same schema gives the same names, setup after setup.
        Assert.Equal(mmc, AthenaDdl.Generate(Catalogs.TwoJobs(), "batchrunner").Where(s => s.Sql.StartsWith("CREATE EXTERNAL TABLE `results_mmc_sweep_", StringComparison.Ordinal)).Select(s => s.Sql));
        var view = statements.Single(s => s.Purpose == "view results").Sql;
        Assert.Contains("CAST(\"served\" AS double) AS \"served\"", view, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://bucket/prefix", "not an s3://bucket/prefix URI")]
    [InlineData("/local/store", "not an s3://bucket/prefix URI")]
    [InlineData("s3://bucket/a//b", "empty folder")]
    public void A_store_Athena_cannot_read_is_refused(string store, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => AthenaDdl.Generate(new AthenaCatalog(store, []), "batchrunner"));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Columns_that_collide_once_folded_to_lower_case_are_refused()
    {
        var catalog = new AthenaCatalog(Catalogs.Store,
            [new AthenaRunSchema("a", "r1", [new("Rate", AthenaType.Double)], [new("rate", AthenaType.Double)])]);
        var e = Assert.Throws<ArgumentException>(() => AthenaDdl.Generate(catalog, "batchrunner"));
        Assert.Equal("column 'rate' appears twice in a/r1 (Athena folds names to lower case)", e.Message);
    }

    [Theory]
    [InlineData("bad name", "r1", "x", "BatchJob name 'bad name' is not a DNS label")]
    [InlineData("a", "r1'; DROP", "x", "run id 'r1'; DROP' of a is not letters and digits")]
    [InlineData("a", "r1", "x-y", "column 'x-y' of a/r1: Athena columns are letters, digits and _")]
    [InlineData("a", "r1", "status", "parameter 'status' of a/r1 collides with a ledger column")]
    public void Names_that_cannot_be_tables_or_columns_are_refused(string job, string run, string parameter, string message)
    {
        var catalog = new AthenaCatalog(Catalogs.Store, [new AthenaRunSchema(job, run, [new(parameter, AthenaType.Bigint)], [])]);
        var e = Assert.Throws<ArgumentException>(() => AthenaDdl.Generate(catalog, "batchrunner"));
        Assert.Equal(message, e.Message);
    }

    internal static string Render(IEnumerable<AthenaStatement> statements) =>
        string.Join("", statements.Select(s => $"-- {s.Purpose}\n{s.Sql};\n\n"));

    private static string SourceDirectory([System.Runtime.CompilerServices.CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}

/// <summary>The generated statements run as they are: the stub's DuckDB creates the tables and executes the views.</summary>
public sealed class DdlRunsTests
{
    [Fact]
    public void Every_statement_of_the_golden_catalog_runs_and_the_views_have_the_local_columns()
    {
        var bucket = Directory.CreateTempSubdirectory("athena-empty-");
        try
        {
            using var athena = new Stub.DuckAthena(new Dictionary<string, string> { ["sweeps-bucket"] = bucket.FullName });
            foreach (var statement in AthenaDdl.Generate(Catalogs.TwoJobs(), "batchrunner"))
            {
                athena.Execute(statement.Sql, statement.NeedsDatabase ? "batchrunner" : null);
            }

            var results = athena.Execute("SELECT * FROM results", "batchrunner");
            Assert.Empty(results.Rows);
            Assert.Equal(
                "batchjob:varchar namespace:varchar run:varchar index:bigint repeat:bigint seed:bigint arrival_rate:double servers:varchar " +
                "mean_wait:double served:double label:varchar converged:boolean estimate:double samples:bigint output_servers:varchar",
                string.Join(" ", results.Columns.Select(c => $"{c.Name}:{c.Type}")));
            var indexes = athena.Execute("SELECT * FROM indexes", "batchrunner");
            Assert.Equal(
                "batchjob namespace run index attempt repeat seed arrival_rate servers status exit_code reason started_at finished_at " +
                "duration_seconds backend output_files output_bytes output_rows output_malformed output_note point_key reused_from " +
                "vcpu_seconds gib_seconds billed_vcpu_seconds billed_gib_seconds capacity",
                string.Join(" ", indexes.Columns.Select(c => c.Name)));
        }
        finally
        {
            bucket.Delete(recursive: true);
        }
    }
}
