using System.ComponentModel.DataAnnotations;

namespace BatchRunner.Controller;

/// <summary><c>BatchRunner:Kubernetes</c>: the operator and its API client.</summary>
public sealed class KubernetesOptions
{
    public const string Section = "BatchRunner:Kubernetes";

    public bool Enabled { get; init; } = true;

    /// <summary>A kubeconfig file; when empty, the in-cluster service account, else $KUBECONFIG or ~/.kube/config.</summary>
    public string? Kubeconfig { get; init; }

    /// <summary>BatchJobs reconciled at once.</summary>
    [Range(1, 64)]
    public int Workers { get; init; } = 4;

    /// <summary>
    /// API requests per second, steady state (watches are not counted). Unset: <see cref="AutoQps"/> until the API
    /// server's first answer shows API Priority and Fairness, then no client-side limit (the server shares its own
    /// capacity and answers 429, which the client waits out). Set, it always holds.
    /// </summary>
    [Range(0.1, 10_000)]
    public double? Qps { get; init; }

    /// <summary>The rate while <see cref="Qps"/> is unset and the API server has not shown API Priority and Fairness.</summary>
    public const double AutoQps = 50;

    /// <summary>API requests allowed in a burst above the steady rate.</summary>
    [Range(1, 10_000)]
    public int Burst { get; init; } = 100;

    /// <summary>How long a finished Job (and its pods) is kept; the BatchJob keeps its status after that.</summary>
    [Range(0, 31_536_000)]
    public int TtlSecondsAfterFinished { get; init; } = 3600;

    /// <summary>Most completions of one Job: a larger BatchJob (up to a million indexes) is split into several Jobs.</summary>
    [Range(1, BatchRunner.Kubernetes.Dispatch.JobParts.MaxCompletions)]
    public int MaxCompletionsPerJob { get; init; } = BatchRunner.Kubernetes.Dispatch.JobParts.MaxCompletions;

    /// <summary>
    /// The image whose <c>/app/batchrunner-exec</c> an init container copies into pods when a results store is set
    /// (<c>BatchRunner:Results:Uri</c>); the controller's own image holds it.
    /// </summary>
    [Required]
    public string ExecImage { get; init; } = BatchRunner.Kubernetes.Dispatch.ResultsCollection.DefaultExecImage;
}

/// <summary><c>BatchRunner:LeaderElection</c>: the Lease that makes a second replica a standby.</summary>
public sealed class LeaderElectionOptions : IValidatableObject
{
    public const string Section = "BatchRunner:LeaderElection";

    public bool Enabled { get; init; } = true;

    [Required]
    [RegularExpression("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    public string Namespace { get; init; } = "batchrunner-system";

    [Required]
    public string LeaseName { get; init; } = "batchrunner-controller";

    /// <summary>This replica's name in the Lease; defaults to $POD_NAME, else the host name with a random suffix.</summary>
    public string? Identity { get; init; }

    [Range(2, 600)]
    public int LeaseDurationSeconds { get; init; } = 15;

    [Range(1, 600)]
    public int RenewDeadlineSeconds { get; init; } = 10;

    [Range(1, 600)]
    public int RetryPeriodSeconds { get; init; } = 2;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (RenewDeadlineSeconds >= LeaseDurationSeconds)
        {
            yield return new ValidationResult(
                $"RenewDeadlineSeconds ({RenewDeadlineSeconds}) must be less than LeaseDurationSeconds ({LeaseDurationSeconds})",
                [nameof(RenewDeadlineSeconds)]);
        }

        if (RetryPeriodSeconds >= RenewDeadlineSeconds)
        {
            yield return new ValidationResult(
                $"RetryPeriodSeconds ({RetryPeriodSeconds}) must be less than RenewDeadlineSeconds ({RenewDeadlineSeconds})",
                [nameof(RetryPeriodSeconds)]);
        }
    }

    public string ResolveIdentity() =>
        Identity is { Length: > 0 } identity ? identity
        : Environment.GetEnvironmentVariable("POD_NAME") is { Length: > 0 } pod ? pod
        : $"{Environment.MachineName.ToLowerInvariant()}-{Guid.NewGuid().ToString("N")[..6]}";
}
