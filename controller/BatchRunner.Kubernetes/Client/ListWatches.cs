using BatchRunner.Kubernetes.Controller;
using k8s;
using k8s.Models;

namespace BatchRunner.Kubernetes.Client;

/// <summary>BatchRunner's custom objects of one kind, cluster-wide (BatchJobs in every namespace, Queues).</summary>
public sealed class CustomObjectListWatch<TObject, TList>(IKubernetes client, string plural) : IListWatch<TObject>
    where TObject : IKubernetesObject<V1ObjectMeta>
    where TList : IKubernetesObject<V1ListMeta>, IItems<TObject>
{
    public async Task<(IList<TObject> Items, string ResourceVersion)> ListAsync(CancellationToken cancellation)
    {
        var list = await client.CustomObjects.ListClusterCustomObjectAsync<TList>(
            BatchJobResource.Group, BatchJobResource.Version, plural, cancellationToken: cancellation).ConfigureAwait(false);
        return (ListedObjects.WithoutManagedFields(list.Items), list.Metadata.ResourceVersion);
    }

    public IAsyncEnumerable<(WatchEventType Type, TObject Object)> WatchAsync(string resourceVersion, CancellationToken cancellation) =>
        WatchEvents.ReadAsync<TObject>(
            client, $"apis/{BatchJobResource.Group}/{BatchJobResource.Version}/{plural}?allowWatchBookmarks=true&resourceVersion={Uri.EscapeDataString(resourceVersion)}&watch=true", cancellation);
}

/// <summary>Jobs BatchRunner manages, in every namespace (selected by label, so other Jobs cost nothing).</summary>
public sealed class ManagedJobListWatch(IKubernetes client) : IListWatch<V1Job>
{
    private const string Selector = BatchJobResource.ManagedByLabel + "=" + BatchJobResource.ManagedByValue;

    public async Task<(IList<V1Job> Items, string ResourceVersion)> ListAsync(CancellationToken cancellation)
    {
        var list = await client.BatchV1.ListJobForAllNamespacesAsync(labelSelector: Selector, cancellationToken: cancellation).ConfigureAwait(false);
        return (ListedObjects.WithoutManagedFields(list.Items), list.Metadata.ResourceVersion);
    }

    public IAsyncEnumerable<(WatchEventType Type, V1Job Object)> WatchAsync(string resourceVersion, CancellationToken cancellation) =>
        WatchEvents.ReadAsync<V1Job>(
            client, $"apis/batch/v1/jobs?allowWatchBookmarks=true&labelSelector={Uri.EscapeDataString(Selector)}&resourceVersion={Uri.EscapeDataString(resourceVersion)}&watch=true", cancellation);
}

/// <summary>What a list hands the informers' caches: as a watch's objects, without managedFields, which nothing reads.</summary>
internal static class ListedObjects
{
    public static IList<T> WithoutManagedFields<T>(IList<T> items)
        where T : IKubernetesObject<V1ObjectMeta>
    {
        foreach (var item in items)
        {
            if (item.Metadata is { } metadata)
            {
                metadata.ManagedFields = null;
            }
        }

        return items;
    }
}
