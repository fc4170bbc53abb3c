using System.Text.Json;
using BatchRunner.Core.Scheduling;
using BatchRunner.Kubernetes.Controller;
using k8s.Models;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>Which BatchJob changes wait for the queue's first decision (which reconciles them) rather than a reconcile at once.</summary>
public sealed class AwaitsDecisionTests
{
    private static readonly Standing Decided = new("team-a/sweep", "default", 1, 1, null, null, null, null, null, null, null);

    public static TheoryData<string, bool> Changes => new()
    {
        { "new", true },
        { "new, decided already", false },
        { "written already", false },
        { "invalid spec", false },
        { "being deleted", false },
        { "cancel asked", false },
        { "cancel annotation not true", true },
    };

    [Theory]
    [MemberData(nameof(Changes))]
    public void Only_a_new_valid_batchjob_its_queue_has_not_decided_for_waits_for_the_decision(string change, bool awaits)
    {
        var batchJob = change == "invalid spec" ? Specs.Object("""{"parallelism": -1}""") : Specs.Object();
        Standing? standing = null;
        switch (change)
        {
            case "new, decided already":
                standing = Decided;
                break;
            case "written already":
                batchJob.Status = JsonSerializer.SerializeToElement(new { phase = "Pending" });
                break;
            case "being deleted":
                batchJob.Metadata.DeletionTimestamp = DateTime.UtcNow;
                break;
            case "cancel asked":
                batchJob.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.CancelAnnotation] = "true" };
                break;
            case "cancel annotation not true":
                batchJob.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.CancelAnnotation] = "false" };
                break;
        }

        Assert.Equal(awaits, BatchJobOperator.AwaitsDecision(batchJob, standing, new ParsedSpecs()));
    }
}
