using BatchRunner.Kubernetes;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Testing;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// The controller's informers read their watches off the API server themselves (one decode a line, managedFields
/// skipped): against the real server, as the controller's ServiceAccount, they list, follow and forget Jobs and
/// BatchJobs as the cluster holds them.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class InformerWatchTests(OperatorFixture fixture)
{
    private static readonly TimeSpan Converges = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Informers_list_then_follow_jobs_and_batchjobs_whole_but_for_their_managed_fields()
    {
        var ns = "w-" + Guid.NewGuid().ToString("N")[..10];
        await fixture.ControlPlane.CreateNamespaceAsync(ns);
        var controller = ControlPlane.CreateClient(fixture.ControllerKubeconfig);
        await fixture.Admin.BatchV1.CreateNamespacedJobAsync(ManagedJob("listed"), ns);
        var jobs = new Informer<V1Job>("jobs", new ManagedJobListWatch(controller), NullLogger.Instance, TimeProvider.System);
        var batchJobs = new Informer<BatchJobObject>("batchjobs", new CustomObjectListWatch<BatchJobObject, BatchJobObjectList>(controller, BatchJobResource.Plural), NullLogger.Instance, TimeProvider.System);
        using var stop = new CancellationTokenSource();
        var running = Task.WhenAll(jobs.RunAsync(stop.Token), batchJobs.RunAsync(stop.Token));
        try
        {
            await jobs.WaitForSyncAsync(CancellationToken.None).WaitAsync(Converges);
            await batchJobs.WaitForSyncAsync(CancellationToken.None).WaitAsync(Converges);

            // After the list: a Job, a BatchJob as kubectl writes it, and a Job that is not BatchRunner's.
            await fixture.Admin.BatchV1.CreateNamespacedJobAsync(ManagedJob("watched"), ns);
            var foreign = ManagedJob("foreign");
            foreign.Metadata.Labels = new Dictionary<string, string> { ["app"] = "someone-else" };
            await fixture.Admin.BatchV1.CreateNamespacedJobAsync(foreign, ns);
            await fixture.ApplyAsync(Cluster.BatchJobYaml(ns, "sweep"));
            await Eventually.TrueAsync(() => Task.FromResult(jobs.TryGet($"{ns}/watched", out _) && batchJobs.TryGet($"{ns}/sweep", out _)), Converges, "the watches bring the new objects");

            foreach (var name in new[] { "listed", "watched" })
            {
                Assert.True(jobs.TryGet($"{ns}/{name}", out var cached));
                var stored = await fixture.Admin.BatchV1.ReadNamespacedJobAsync(name, ns);
                Assert.NotEmpty(stored.Metadata.ManagedFields);
                Assert.Null(cached.Metadata.ManagedFields);
                Assert.Equal(stored.Metadata.Uid, cached.Metadata.Uid);
                Assert.Equal(stored.Metadata.Labels, cached.Metadata.Labels);
                Assert.Equal("busybox:1.36", Assert.Single(cached.Spec.Template.Spec.Containers).Image);
                Assert.Equal("250m", cached.Spec.Template.Spec.Containers[0].Resources.Requests["cpu"].ToString());
            }

            Assert.False(jobs.TryGet($"{ns}/foreign", out _), "the Job watch selects BatchRunner's Jobs only");
            Assert.True(batchJobs.TryGet($"{ns}/sweep", out var batchJob));
            Assert.Null(batchJob.Metadata.ManagedFields);
            Assert.Equal("busybox:1.36", batchJob.Spec!.Value.GetProperty("image").GetString());
            Assert.True(Core.Spec.BatchJobParser.FromNode(batchJob.ToDocument()).Job is not null, "the watched BatchJob parses");

            // A deletion is followed too.
            await fixture.Admin.BatchV1.DeleteNamespacedJobAsync("watched", ns);
            await Eventually.TrueAsync(() => Task.FromResult(!jobs.TryGet($"{ns}/watched", out _)), Converges, "the watch forgets the deleted Job");
            Assert.True(jobs.TryGet($"{ns}/listed", out _));
            Assert.Equal((1, 1), (jobs.Lists, batchJobs.Lists));
        }
        finally
        {
            await stop.CancelAsync();
            await running;
        }
    }

    /// <summary>A Job labelled as BatchRunner's, with no pods.</summary>
    internal static V1Job ManagedJob(string name) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { [BatchJobResource.ManagedByLabel] = BatchJobResource.ManagedByValue } },
        Spec = new V1JobSpec
        {
            // No pods: nothing here runs them, and the test is about the Job objects.
            Parallelism = 0,
            Template = new V1PodTemplateSpec
            {
                Spec = new V1PodSpec
                {
                    RestartPolicy = "Never",
                    Containers =
                    [
                        new V1Container
                        {
                            Name = "workload",
                            Image = "busybox:1.36",
                            Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("250m") } },
                        },
                    ],
                },
            },
        },
    };
}
