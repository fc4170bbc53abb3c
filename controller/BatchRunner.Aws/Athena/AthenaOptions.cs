using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;

namespace BatchRunner.Aws.Athena;

/// <summary>
/// <c>BatchRunner:Athena</c>: where queries run and where Athena writes their results. Credentials come from the
/// AWS SDK's default chain, never from here.
/// </summary>
public sealed partial record AthenaOptions : IValidatableObject
{
    public const string Section = "BatchRunner:Athena";

    /// <summary>The database (Glue catalog) holding BatchRunner's tables and views.</summary>
    public string Database { get; init; } = "batchrunner";

    /// <summary>The workgroup queries run in (its limits and its result location apply).</summary>
    public string WorkGroup { get; init; } = "primary";

    /// <summary>
    /// Where Athena writes query results, <c>s3://bucket/prefix/</c>. May be empty when the workgroup sets one;
    /// Athena refuses a query when neither does.
    /// </summary>
    public string? OutputLocation { get; init; }

    /// <summary>A region such as <c>eu-west-1</c>; empty: <c>AWS_REGION</c>, <c>AWS_DEFAULT_REGION</c>, the profile.</summary>
    public string? Region { get; init; }

    /// <summary>An endpoint instead of Athena's (else <c>AWS_ENDPOINT_URL_ATHENA</c>, <c>AWS_ENDPOINT_URL</c>).</summary>
    public string? EndpointUrl { get; init; }

    /// <summary>The first wait between two polls of a running query; it grows to <see cref="MaxPollInterval"/>.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxPollInterval { get; init; } = TimeSpan.FromSeconds(2);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext) => Errors().Select(e => new ValidationResult(e));

    /// <summary>Every problem of these settings, each naming its setting; empty when they can work.</summary>
    public IReadOnlyList<string> Errors()
    {
        var errors = new List<string>();
        if (string.IsNullOrEmpty(Database) || !DatabaseName().IsMatch(Database))
        {
            errors.Add($"{Section}:Database: must be 1 to 255 lower-case letters, digits and _, got '{Database}'");
        }

        if (string.IsNullOrEmpty(WorkGroup) || !WorkGroupName().IsMatch(WorkGroup))
        {
            errors.Add($"{Section}:WorkGroup: must be 1 to 128 letters, digits, '.', '_' or '-', got '{WorkGroup}'");
        }

        if (!string.IsNullOrEmpty(OutputLocation) &&
            (!Uri.TryCreate(OutputLocation, UriKind.Absolute, out var output) || output.Scheme != "s3" || string.IsNullOrEmpty(output.Host)))
        {
            errors.Add($"{Section}:OutputLocation: must be s3://bucket/prefix/, got '{OutputLocation}'");
        }

        if (!string.IsNullOrEmpty(Region) && !RegionName().IsMatch(Region))
        {
            errors.Add($"{Section}:Region: not a region name such as eu-west-1, got '{Region}'");
        }

        if (!string.IsNullOrEmpty(EndpointUrl) &&
            (!Uri.TryCreate(EndpointUrl, UriKind.Absolute, out var endpoint) || (endpoint.Scheme != Uri.UriSchemeHttps && endpoint.Scheme != Uri.UriSchemeHttp)))
        {
            errors.Add($"{Section}:EndpointUrl: must be an http(s) URL, got '{EndpointUrl}'");
        }

        if (PollInterval <= TimeSpan.Zero || MaxPollInterval < PollInterval)
        {
            errors.Add($"{Section}:PollInterval: must be positive and at most MaxPollInterval");
        }

        return errors;
    }

    [GeneratedRegex("^[a-z0-9_]{1,255}$")]
    private static partial Regex DatabaseName();

    [GeneratedRegex("^[a-zA-Z0-9._-]{1,128}$")]
    private static partial Regex WorkGroupName();

    [GeneratedRegex("^[a-z]{2}(-[a-z]+)+-[0-9]+$")]
    private static partial Regex RegionName();
}
