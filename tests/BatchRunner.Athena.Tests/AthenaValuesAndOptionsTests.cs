using BatchRunner.Aws.Athena;
using Microsoft.Extensions.Configuration;

namespace BatchRunner.Athena.Tests;

/// <summary>Athena's text values typed by their column type; the settings' validation.</summary>
public sealed class AthenaValuesAndOptionsTests
{
    public static TheoryData<string, string, object> Values => new()
    {
        { "42", "bigint", 42L },
        { "-7", "integer", -7L },
        { "1.0E-5", "double", 1.0E-5 },
        { "0.30000000000000004", "double", 0.30000000000000004 },
        { "NaN", "double", double.NaN },
        { "-Infinity", "real", double.NegativeInfinity },
        { "12.50", "decimal(10,2)", 12.50m },
        { "true", "boolean", true },
        { "2026-11-22 13:34:21.616", "timestamp", new DateTime(2026, 11, 22, 13, 34, 21, 616, DateTimeKind.Utc) },
        { "2026-11-22", "date", new DateOnly(2026, 11, 22) },
        { "mmc-sweep", "varchar", "mmc-sweep" },
        { "[1, 2]", "array(integer)", "[1, 2]" },
        { "not a number", "bigint", "not a number" },
    };

    [Theory]
    [MemberData(nameof(Values))]
    public void A_value_is_typed_by_its_column_type(string text, string type, object expected)
    {
        var value = AthenaQueryRunner.Convert(text, type);
        Assert.Equal(expected, value);
        Assert.Equal(expected.GetType(), value!.GetType());
    }

    [Fact]
    public void A_missing_value_is_null_whatever_its_type() => Assert.Null(AthenaQueryRunner.Convert(null, "bigint"));

    [Fact]
    public void The_defaults_are_valid() => Assert.Empty(new AthenaOptions().Errors());

    [Fact]
    public void Every_problem_is_reported_at_once_each_naming_its_setting()
    {
        var options = new AthenaOptions
        {
            Database = "", WorkGroup = "a b", OutputLocation = "bucket/prefix", Region = "EU", EndpointUrl = "ftp://athena",
            PollInterval = TimeSpan.FromSeconds(5), MaxPollInterval = TimeSpan.FromSeconds(1),
        };
        Assert.Equal(
            [
                "BatchRunner:Athena:Database: must be 1 to 255 lower-case letters, digits and _, got ''",
                "BatchRunner:Athena:WorkGroup: must be 1 to 128 letters, digits, '.', '_' or '-', got 'a b'",
                "BatchRunner:Athena:OutputLocation: must be s3://bucket/prefix/, got 'bucket/prefix'",
                "BatchRunner:Athena:Region: not a region name such as eu-west-1, got 'EU'",
                "BatchRunner:Athena:EndpointUrl: must be an http(s) URL, got 'ftp://athena'",
                "BatchRunner:Athena:PollInterval: must be positive and at most MaxPollInterval",
            ],
            options.Errors());
        var results = new List<System.ComponentModel.DataAnnotations.ValidationResult>();
        Assert.False(System.ComponentModel.DataAnnotations.Validator.TryValidateObject(options, new(options), results, validateAllProperties: true));
        Assert.Equal(6, results.Count);
    }

    [Fact]
    public void A_valid_configuration_passes()
    {
        var options = new AthenaOptions
        {
            Database = "sweeps_2026", WorkGroup = "batch.runner-1", OutputLocation = "s3://athena-results/batchrunner/",
            Region = "us-gov-west-1", EndpointUrl = "http://127.0.0.1:4566",
        };
        Assert.Empty(options.Errors());
    }
}

/// <summary><c>BatchRunner:Athena</c> bound and validated as the controller binds its options.</summary>
public sealed class AthenaOptionsBindingTests
{
    private static Microsoft.Extensions.Options.IOptions<AthenaOptions> Bind(Dictionary<string, string?> settings)
    {
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddSingleton<Microsoft.Extensions.Configuration.IConfiguration>(configuration);
        services.AddOptions<AthenaOptions>().BindConfiguration(AthenaOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        return services.BuildServiceProvider().GetRequiredService<Microsoft.Extensions.Options.IOptions<AthenaOptions>>();
    }

    [Fact]
    public void Settings_bind_from_configuration()
    {
        var options = Bind(new()
        {
            ["BatchRunner:Athena:Database"] = "sweeps",
            ["BatchRunner:Athena:WorkGroup"] = "batch",
            ["BatchRunner:Athena:OutputLocation"] = "s3://athena-results/q/",
            ["BatchRunner:Athena:Region"] = "eu-central-1",
            ["BatchRunner:Athena:PollInterval"] = "00:00:00.5",
        }).Value;
        Assert.Equal(("sweeps", "batch", "s3://athena-results/q/", "eu-central-1", TimeSpan.FromMilliseconds(500)),
            (options.Database, options.WorkGroup, options.OutputLocation, options.Region, options.PollInterval));
    }

    [Fact]
    public void Bad_settings_fail_validation_naming_each()
    {
        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => Bind(new()
        {
            ["BatchRunner:Athena:WorkGroup"] = "no spaces allowed",
            ["BatchRunner:Athena:OutputLocation"] = "athena-results",
        }).Value);
        // The validator prefixes each of our messages with the type's name; ours name the setting.
        Assert.Equal(2, e.Failures.Count());
        Assert.Contains(e.Failures, f => f.Contains("BatchRunner:Athena:WorkGroup: must be 1 to 128 letters, digits, '.', '_' or '-', got 'no spaces allowed'", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("BatchRunner:Athena:OutputLocation: must be s3://bucket/prefix/, got 'athena-results'", StringComparison.Ordinal));
    }
}
