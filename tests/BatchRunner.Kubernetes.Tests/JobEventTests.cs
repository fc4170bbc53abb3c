using BatchRunner.Kubernetes.Controller;
using k8s.Models;

namespace BatchRunner.Kubernetes.Tests;

public sealed class JobEventTests
{
    private static readonly DateTime Now = new(2026, 12, 7, 0, 0, 0, DateTimeKind.Utc);

    public static TheoryData<string, V1Job?, bool> Changes => new()
    {
        { "created, not counted yet", Job(), false },
        { "created with an empty status", Job(status: new V1JobStatus()), false },
        { "started", Job(status: new V1JobStatus { StartTime = Now }), true },
        { "a pod running", Job(status: new V1JobStatus { Active = 1 }), true },
        { "an index succeeded", Job(status: new V1JobStatus { Succeeded = 1 }), true },
        { "an index failed", Job(status: new V1JobStatus { Failed = 1 }), true },
        { "finished", Job(status: new V1JobStatus { Conditions = [new V1JobCondition { Type = "Complete", Status = "True" }] }), true },
        { "suspended for Kueue", Job(suspend: true), true },
        { "being deleted", Job(deleting: true), true },
        { "deleted", null, true },
    };

    [Theory]
    [MemberData(nameof(Changes))]
    public void Only_a_job_change_that_can_move_its_batchjob_wakes_it_up(string change, V1Job? job, bool news)
    {
        Assert.True(BatchJobOperator.IsNewsToOwner(job) == news, $"{change}: expected news={news}");
    }

    private static V1Job Job(V1JobStatus? status = null, bool suspend = false, bool deleting = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = "sweep", NamespaceProperty = "research", DeletionTimestamp = deleting ? Now : null },
        Spec = new V1JobSpec { Suspend = suspend ? true : null, Template = new V1PodTemplateSpec() },
        Status = status,
    };
}
