namespace BatchRunner.Core.Runs;

/// <summary>
/// Labels and annotations on a BatchJob's pods that tools outside the controller read too (<c>batchrunner logs
/// --cluster</c> finds an index's pods by them), so they are declared once, here.
/// </summary>
public static class WorkloadLabels
{
    /// <summary>The BatchJob a pod (and its Job) belongs to.</summary>
    public const string BatchJob = "batchrunner.io/batchjob";

    /// <summary>The position an Indexed Job gives each of its pods (Kubernetes 1.21 and later): the index, or its place in the Job's list.</summary>
    public const string CompletionIndexAnnotation = "batch.kubernetes.io/job-completion-index";
}
