using System.CommandLine;
using BatchRunner.Aws.Athena;

namespace BatchRunner.Cli.Athena;

/// <summary>
/// Athena's settings on the command line: each option overrides its <c>BatchRunner:Athena</c> setting given in the
/// environment (<c>BatchRunner__Athena__WorkGroup</c>, …), which overrides the defaults.
/// </summary>
public sealed class AthenaCliSettings
{
    public Option<string?> Database { get; } = new("--database") { Description = "Athena database (default BatchRunner__Athena__Database, else batchrunner)" };
    public Option<string?> WorkGroup { get; } = new("--workgroup") { Description = "Athena workgroup (default BatchRunner__Athena__WorkGroup, else primary)" };
    public Option<string?> OutputLocation { get; } = new("--output-location") { Description = "s3:// folder for Athena's result files (default BatchRunner__Athena__OutputLocation, else the workgroup's)" };
    public Option<string?> Region { get; } = new("--region") { Description = "AWS region (default BatchRunner__Athena__Region, AWS_REGION, the profile)" };
    public Option<string?> EndpointUrl { get; } = new("--endpoint-url") { Description = "Athena endpoint (default BatchRunner__Athena__EndpointUrl, AWS_ENDPOINT_URL_ATHENA, AWS_ENDPOINT_URL)" };

    public IEnumerable<Option> All => [Database, WorkGroup, OutputLocation, Region, EndpointUrl];

    /// <summary>The settings, or every problem with them (each naming its setting).</summary>
    public (AthenaOptions? Options, IReadOnlyList<string> Errors) Resolve(ParseResult parsed, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string? Setting(Option<string?> option, string name) =>
            parsed.GetValue(option) ?? NonEmpty(environment("BatchRunner__Athena__" + name));
        var defaults = new AthenaOptions();
        var options = new AthenaOptions
        {
            Database = Setting(Database, nameof(AthenaOptions.Database)) ?? defaults.Database,
            WorkGroup = Setting(WorkGroup, nameof(AthenaOptions.WorkGroup)) ?? defaults.WorkGroup,
            OutputLocation = Setting(OutputLocation, nameof(AthenaOptions.OutputLocation)),
            Region = Setting(Region, nameof(AthenaOptions.Region)),
            EndpointUrl = Setting(EndpointUrl, nameof(AthenaOptions.EndpointUrl)),
        };
        var errors = options.Errors();
        return (errors.Count == 0 ? options : null, errors);
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
