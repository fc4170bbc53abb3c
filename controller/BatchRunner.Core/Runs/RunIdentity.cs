using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Runs;

/// <summary>
/// A run's id is derived from what it runs: the namespace, the name and the resolved spec. Running the same
/// spec again therefore finds (and resumes) the same run; changing the spec starts a new one.
/// </summary>
public static class RunIdentity
{
    private static readonly JsonSerializerOptions CanonicalOptions = new()
    {
        WriteIndented = false,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    public static string For(BatchJob job)
    {
        var canonical = JsonSerializer.Serialize(new { job.Metadata.Namespace, job.Metadata.Name, job.Spec }, CanonicalOptions);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(canonical));
        return "r" + Convert.ToHexStringLower(hash)[..11];
    }

    /// <summary>The resolved spec as JSON, as stored beside a run.</summary>
    public static string SpecJson(BatchJob job) => JsonSerializer.Serialize(job, CanonicalOptions);
}
