using System.Collections.Concurrent;
using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>The wait between calls to the API server that keep failing (a list, a watch, the version at start).</summary>
public static class ApiRetry
{
    /// <summary>After <paramref name="failures"/> failed calls in a row: 0.4 s doubling, at most 30 s.</summary>
    public static TimeSpan After(int failures) => TimeSpan.FromMilliseconds(Math.Min(200 * Math.Pow(2, failures), 30_000));
}

/// <summary>The key of a namespaced object in caches and queues: <c>namespace/name</c>.</summary>
public static class ObjectKey
{
    public static string Of(IKubernetesObject<V1ObjectMeta> item) => $"{item.Metadata.NamespaceProperty}/{item.Metadata.Name}";

    public static (string Namespace, string Name) Split(string key) => key.Split('/', 2) is [var ns, var name] ? (ns, name) : ("", key);
}

/// <summary>How an informer lists and watches one kind of object.</summary>
public interface IListWatch<T>
    where T : IKubernetesObject<V1ObjectMeta>
{
    Task<(IList<T> Items, string ResourceVersion)> ListAsync(CancellationToken cancellation);

    IAsyncEnumerable<(WatchEventType Type, T Object)> WatchAsync(string resourceVersion, CancellationToken cancellation);
}

/// <summary>
/// Keeps a cache of one kind of object in step with the API server, the way client-go's informer does: list,
/// then watch from the list's resourceVersion; a watch that ends is resumed from the last version seen; a
/// version the server no longer has (410 Gone) means list again. Every change is reported to <see cref="Changed"/>.
/// </summary>
public sealed class Informer<T>(string name, IListWatch<T> source, ILogger log, TimeProvider time)
    where T : IKubernetesObject<V1ObjectMeta>
{
    private readonly ConcurrentDictionary<string, T> _cache = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Called with the object's key after it was added, changed or deleted (and with the object, if it still exists).</summary>
    public event Action<string, T?>? Changed;

    public bool HasSynced => _synced.Task.IsCompleted;

    /// <summary>How many times the informer listed (the first list plus every relist after a 410).</summary>
    public int Lists { get; private set; }

    public Task WaitForSyncAsync(CancellationToken cancellation) => _synced.Task.WaitAsync(cancellation);

    public bool TryGet(string key, out T value) => _cache.TryGetValue(key, out value!);

    public ICollection<T> Items => _cache.Values;

    public async Task RunAsync(CancellationToken cancellation)
    {
        var failures = 0;
        while (!cancellation.IsCancellationRequested)
        {
            try
            {
                var resourceVersion = await ListAsync(cancellation).ConfigureAwait(false);
                failures = 0;
                while (!cancellation.IsCancellationRequested)
                {
                    resourceVersion = await WatchAsync(resourceVersion, cancellation).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                return;
            }
            catch (ResourceVersionGoneException)
            {
                log.LogInformation("Informer {Informer}: resource version expired (410 Gone); listing again", name);
            }
            catch (Exception e)
            {
                failures++;
                var delay = ApiRetry.After(failures);
                if (ApiFailure.IsExpected(e))
                {
                    log.LogWarning("Informer {Informer}: list/watch failed ({Failures} in a row): {Error}; retrying in {Delay}", name, failures, ApiFailure.Describe(e), delay);
                }
                else
                {
                    log.LogWarning(e, "Informer {Informer}: list/watch failed ({Failures} in a row); retrying in {Delay}", name, failures, delay);
                }

                await Task.Delay(delay, time, cancellation).ConfigureAwait(false);
            }
        }
    }

    private async Task<string> ListAsync(CancellationToken cancellation)
    {
        var (items, resourceVersion) = await source.ListAsync(cancellation).ConfigureAwait(false);
        Lists++;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            var key = ObjectKey.Of(item);
            seen.Add(key);
            _cache[key] = item;
            Changed?.Invoke(key, item);
        }

        // Whatever vanished while nobody watched is deleted now.
        foreach (var key in _cache.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            _cache.TryRemove(key, out _);
            Changed?.Invoke(key, default);
        }

        _synced.TrySetResult();
        log.LogDebug("Informer {Informer}: listed {Count} objects at resource version {ResourceVersion}", name, items.Count, resourceVersion);
        return resourceVersion;
    }

    /// <summary>Watches until the server ends the watch; returns the last resource version seen.</summary>
    private async Task<string> WatchAsync(string resourceVersion, CancellationToken cancellation)
    {
        try
        {
            await foreach (var (type, item) in source.WatchAsync(resourceVersion, cancellation).ConfigureAwait(false))
            {
                resourceVersion = item.Metadata?.ResourceVersion ?? resourceVersion;
                if (type == WatchEventType.Bookmark)
                {
                    continue;
                }

                var key = ObjectKey.Of(item);
                if (type == WatchEventType.Deleted)
                {
                    _cache.TryRemove(key, out _);
                    Changed?.Invoke(key, default);
                }
                else
                {
                    _cache[key] = item;
                    Changed?.Invoke(key, item);
                }
            }
        }
        catch (KubernetesException e) when (e.Status?.Code == (int)HttpStatusCode.Gone)
        {
            throw new ResourceVersionGoneException();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Gone)
        {
            throw new ResourceVersionGoneException();
        }

        return resourceVersion;
    }

    private sealed class ResourceVersionGoneException : Exception;
}
