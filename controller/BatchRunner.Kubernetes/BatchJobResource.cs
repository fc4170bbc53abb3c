using BatchRunner.Core.Spec;

namespace BatchRunner.Kubernetes;

/// <summary>The BatchJob custom resource as the API server knows it, and the names BatchRunner derives from it.</summary>
public static class BatchJobResource
{
    public const string Group = BatchJob.Group;
    public const string Version = BatchJob.Version;
    public const string Plural = "batchjobs";
    public const string Kind = BatchJob.KindName;
    public const string ApiVersion = BatchJob.ApiVersion;

    /// <summary>Held on every BatchJob until its backend work is stopped.</summary>
    public const string Finalizer = "batchrunner.io/cleanup";

    /// <summary>Set to "true" to cancel a BatchJob without deleting it.</summary>
    public const string CancelAnnotation = "batchrunner.io/cancel";

    /// <summary>Asks for a rerun of a finished run: <c>failed</c> or index ranges, optionally <c>@</c> and a tag (<see cref="Core.Runs.RerunRequest"/>).</summary>
    public const string RerunAnnotation = Core.Runs.RerunRequest.Annotation;

    public const string ManagedByLabel = "app.kubernetes.io/managed-by";
    public const string ManagedByValue = "batchrunner";
    public const string BatchJobLabel = Core.Runs.WorkloadLabels.BatchJob;
    public const string RunLabel = "batchrunner.io/run";

    /// <summary>The Job of a BatchJob: its own name, so one BatchJob can never own two.</summary>
    public static string JobName(string batchJob) => batchJob;

    /// <summary>The ConfigMap holding the sweep plan and the pod entrypoint.</summary>
    public static string PlanConfigMapName(string batchJob) => batchJob + "-plan";
}
