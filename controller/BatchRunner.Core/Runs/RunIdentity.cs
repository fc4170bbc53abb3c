using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BatchRunner.Core.Json;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Runs;

/// <summary>
/// A run's id is derived from what decides its results: the namespace, the name and the resolved spec less its
/// execution settings (parallelism, retry, timeoutSeconds, deadlineSeconds, backend, queue, priority, reuse, budget). Running the same spec again
/// finds (and resumes) the same run, also with more parallelism or a longer deadline; changing what it computes
/// (command, image, env, resources, sweep, completions, results) starts a new one.
/// </summary>
public static class RunIdentity
{
    /// <summary>
    /// The spec fields (as written under <c>spec.</c>) that say how a run executes, not what it computes: left out of
    /// the run id, and the only ones a dispatched run may change. <see cref="ResultsDefining"/> resets exactly these
    /// (a test holds the two together).
    /// </summary>
    public static IReadOnlySet<string> ExecutionOnlyFields { get; } =
        new HashSet<string>(["parallelism", "retry", "timeoutSeconds", "deadlineSeconds", "backend", "queue", "priority", "reuse", "budget"], StringComparer.Ordinal);

    /// <summary>The spec with its execution-only fields at fixed values: what decides the run's results.</summary>
    public static BatchJobSpec ResultsDefining(BatchJobSpec spec) => spec with
    {
        Parallelism = 1,
        Retry = RetryPolicy.Default,
        TimeoutSeconds = null,
        DeadlineSeconds = null,
        Backend = Backend.Local,
        Queue = null,
        Priority = 0,
        PriorityClass = null,
        Reuse = null,
        Budget = null,
    };

    public static string For(BatchJob job) => Identities.GetValue(job, static parsed => Compute(parsed));

    /// <summary>
    /// Each spec's identity, computed once per parsed spec (specs are immutable records): a BatchJob is reconciled
    /// many times for each time its spec is parsed, and the canonical JSON and its hash were a measurable part of
    /// every reconcile in a burst (tests/bench/operator.sh).
    /// </summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<BatchJob, string> Identities = new();

    private static string Compute(BatchJob job)
    {
        var canonical = JsonSerializer.Serialize(new CanonicalRun(job.Metadata.Namespace, job.Metadata.Name, ResultsDefining(job.Spec)), CanonicalJson.Default.CanonicalRun);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(canonical));
        return "r" + Convert.ToHexStringLower(hash)[..11];
    }

    /// <summary>The resolved spec as JSON, as stored beside a run.</summary>
    public static string SpecJson(BatchJob job) => JsonSerializer.Serialize(job, CanonicalJson.Default.BatchJob);
}
