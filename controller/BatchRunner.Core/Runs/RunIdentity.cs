using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BatchRunner.Core.Json;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Runs;

/// <summary>
/// A run's id is derived from what decides its results: the namespace, the name and the resolved spec less its
/// execution settings (parallelism, retry, timeoutSeconds, deadlineSeconds, backend). Running the same spec again
/// finds (and resumes) the same run, also with more parallelism or a longer deadline; changing what it computes
/// (command, image, env, resources, sweep, completions, results) starts a new one.
/// </summary>
public static class RunIdentity
{
    public static string For(BatchJob job)
    {
        var resultsDefining = job.Spec with
        {
            Parallelism = 1,
            Retry = RetryPolicy.Default,
            TimeoutSeconds = null,
            DeadlineSeconds = null,
            Backend = Backend.Local,
        };
        var canonical = JsonSerializer.Serialize(new CanonicalRun(job.Metadata.Namespace, job.Metadata.Name, resultsDefining), CanonicalJson.Default.CanonicalRun);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(canonical));
        return "r" + Convert.ToHexStringLower(hash)[..11];
    }

    /// <summary>The resolved spec as JSON, as stored beside a run.</summary>
    public static string SpecJson(BatchJob job) => JsonSerializer.Serialize(job, CanonicalJson.Default.BatchJob);
}
