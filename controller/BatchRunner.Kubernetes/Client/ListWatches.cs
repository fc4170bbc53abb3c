using System.Runtime.CompilerServices;
using System.Text.Json;
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

    public async IAsyncEnumerable<(WatchEventType Type, TObject Object)> WatchAsync(string resourceVersion, [EnumeratorCancellation] CancellationToken cancellation)
    {
        if (client is k8s.Kubernetes kubernetes)
        {
            var path = $"apis/{BatchJobResource.Group}/{BatchJobResource.Version}/{plural}?allowWatchBookmarks=true&resourceVersion={Uri.EscapeDataString(resourceVersion)}&watch=true";
            await foreach (var item in WatchEvents.ReadAsync<TObject>(kubernetes, path, cancellation).ConfigureAwait(false))
            {
                yield return item;
            }

            yield break;
        }

        // A client that is not the library's (a test's) watches through the generated call.
        Exception? failure = null;
        var events = client.CustomObjects.WatchListClusterCustomObjectAsync(
            BatchJobResource.Group, BatchJobResource.Version, plural,
            allowWatchBookmarks: true, resourceVersion: resourceVersion, onError: e => failure ??= e, cancellationToken: cancellation);
        await foreach (var (type, item) in events.ConfigureAwait(false))
        {
            yield return (type, CustomObjectEvents.Decode<TObject>(item));
        }

        WatchFailure.ThrowIfAny(failure);
    }
}

/// <summary>How a custom object in a watch event becomes its type.</summary>
internal static class CustomObjectEvents
{
    /// <summary>The client reads a custom object's event as a JsonElement; anything else it hands over, it can write again.</summary>
    public static TObject Decode<TObject>(object item) =>
        KubernetesJson.Deserialize<TObject>(item is JsonElement json ? json.GetRawText() : KubernetesJson.Serialize(item));
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

    public async IAsyncEnumerable<(WatchEventType Type, V1Job Object)> WatchAsync(string resourceVersion, [EnumeratorCancellation] CancellationToken cancellation)
    {
        if (client is k8s.Kubernetes kubernetes)
        {
            var path = $"apis/batch/v1/jobs?allowWatchBookmarks=true&labelSelector={Uri.EscapeDataString(Selector)}&resourceVersion={Uri.EscapeDataString(resourceVersion)}&watch=true";
            await foreach (var item in WatchEvents.ReadAsync<V1Job>(kubernetes, path, cancellation).ConfigureAwait(false))
            {
                yield return item;
            }

            yield break;
        }

        Exception? failure = null;
        var events = client.BatchV1.WatchListJobForAllNamespacesAsync(
            allowWatchBookmarks: true, labelSelector: Selector, resourceVersion: resourceVersion, onError: e => failure ??= e, cancellationToken: cancellation);
        await foreach (var item in events.ConfigureAwait(false))
        {
            yield return item;
        }

        WatchFailure.ThrowIfAny(failure);
    }
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

/// <summary>A watch reports some failures (a 410 Gone among them) through a callback and then ends; they are rethrown here.</summary>
internal static class WatchFailure
{
    public static void ThrowIfAny(Exception? failure)
    {
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }
    }
}
