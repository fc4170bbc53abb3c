using System.ComponentModel.DataAnnotations;
using BatchRunner.Core.Store;

namespace BatchRunner.Aws.S3;

/// <summary>
/// <c>BatchRunner:Results</c>: where the results of cluster runs go, and how to reach S3. Region, endpoint and
/// credentials left empty follow the SDK's conventions (<c>AWS_REGION</c>, <c>AWS_ENDPOINT_URL_S3</c> /
/// <c>AWS_ENDPOINT_URL</c>, the default credential chain); credentials are never settings, so never logged.
/// </summary>
public sealed class ResultsOptions : IValidatableObject
{
    public const string Section = "BatchRunner:Results";

    /// <summary>Smallest part S3 accepts in a multipart upload (all but the last part).</summary>
    public const long MinPartSizeBytes = 5L * 1024 * 1024;

    /// <summary><c>s3://bucket/prefix</c> or a local folder; empty: no results store configured.</summary>
    public string? Uri { get; init; }

    public string? Region { get; init; }

    /// <summary>An S3-compatible endpoint (MinIO, an emulator), as the AWS CLI's <c>--endpoint-url</c>.</summary>
    public string? EndpointUrl { get; init; }

    /// <summary>Path-style addressing (<c>host/bucket/key</c>), which most S3-compatible servers need.</summary>
    public bool ForcePathStyle { get; init; }

    /// <summary>Files larger than this are uploaded in parts of this size, streamed from disk.</summary>
    [Range(MinPartSizeBytes, 5L * 1024 * 1024 * 1024)]
    public long PartSizeBytes { get; init; } = 16L * 1024 * 1024;

    /// <summary>
    /// Kubernetes: a Secret in each BatchJob's namespace with <c>AWS_ACCESS_KEY_ID</c> / <c>AWS_SECRET_ACCESS_KEY</c>
    /// for the results wrapper, where pods have no AWS identity of their own (IRSA); its name only, never its content.
    /// </summary>
    public string? CredentialsSecret { get; init; }

    /// <summary>The controller compacts a BatchJob's run to Parquet once it succeeded or failed (cluster backends).</summary>
    public bool CompactFinishedRuns { get; init; } = true;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Uri);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (IsConfigured)
        {
            string? error = null;
            try
            {
                StoreUri.Parse(Uri!);
            }
            catch (FormatException e)
            {
                error = e.Message;
            }

            if (error is not null)
            {
                yield return new ValidationResult($"Uri: {error}", [nameof(Uri)]);
            }
        }

        if (!string.IsNullOrEmpty(EndpointUrl) && !System.Uri.TryCreate(EndpointUrl, UriKind.Absolute, out _))
        {
            yield return new ValidationResult($"EndpointUrl: \"{EndpointUrl}\" is not an absolute URL", [nameof(EndpointUrl)]);
        }
    }

    /// <summary>The settings from <c>BatchRunner__Results__*</c> environment variables (the wrapper has no configuration files).</summary>
    public static ResultsOptions FromEnvironment(Func<string, string?> variable) => new()
    {
        Uri = variable("BatchRunner__Results__Uri"),
        Region = variable("BatchRunner__Results__Region"),
        EndpointUrl = variable("BatchRunner__Results__EndpointUrl"),
        ForcePathStyle = bool.TryParse(variable("BatchRunner__Results__ForcePathStyle"), out var pathStyle) && pathStyle,
        PartSizeBytes = long.TryParse(variable("BatchRunner__Results__PartSizeBytes"), out var part) ? part : 16L * 1024 * 1024,
    };

    /// <summary>What a log line may say: where, never as whom.</summary>
    public override string ToString() =>
        $"{Uri} (endpoint {(string.IsNullOrEmpty(EndpointUrl) ? "from the SDK" : EndpointUrl)}, region {(string.IsNullOrEmpty(Region) ? "from the SDK" : Region)})";
}
