using System.Net;
using System.Runtime.CompilerServices;
using BatchRunner.Kubernetes.Controller;
using Microsoft.Extensions.Logging.Abstractions;
using k8s;
using k8s.Models;
using Xunit;

namespace BatchRunner.Kubernetes.Tests;

public sealed class InformerTests
{
    [Fact]
    public async Task A_410_gone_during_watch_lists_again_and_the_cache_matches_the_new_list()
    {
        var source = new ScriptedListWatch();
        source.Lists.Enqueue(([ConfigMap("a", "1"), ConfigMap("b", "2")], "2"));
        source.Lists.Enqueue(([ConfigMap("b", "5"), ConfigMap("c", "6")], "6"));
        source.Watches.Enqueue(_ => throw new KubernetesException(new V1Status { Code = (int)HttpStatusCode.Gone, Reason = "Expired" }));
        var informer = new Informer<V1ConfigMap>("test", source, NullLogger.Instance, TimeProvider.System);
        var deleted = new List<string>();
        informer.Changed += (key, value) =>
        {
            if (value is null)
            {
                deleted.Add(key);
            }
        };
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        var run = informer.RunAsync(stop.Token);
        await source.SecondWatchStarted.Task.WaitAsync(stop.Token);
        await stop.CancelAsync();
        await run;

        Assert.Equal(2, informer.Lists);
        Assert.Equal(["ns/b", "ns/c"], informer.Items.Select(ObjectKey.Of).Order());
        Assert.Equal(["ns/a"], deleted);
        Assert.Equal(["2", "6"], source.WatchedFrom);
    }

    [Fact]
    public async Task A_watch_the_server_ends_resumes_from_the_last_version_seen_without_listing_again()
    {
        var source = new ScriptedListWatch();
        source.Lists.Enqueue(([ConfigMap("a", "1")], "1"));
        source.Watches.Enqueue(_ => [(WatchEventType.Modified, ConfigMap("a", "7")), (WatchEventType.Added, ConfigMap("b", "8"))]);
        var informer = new Informer<V1ConfigMap>("test", source, NullLogger.Instance, TimeProvider.System);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        var run = informer.RunAsync(stop.Token);
        await source.SecondWatchStarted.Task.WaitAsync(stop.Token);
        await stop.CancelAsync();
        await run;

        Assert.Equal(1, informer.Lists);
        Assert.Equal(["1", "8"], source.WatchedFrom);
        Assert.True(informer.TryGet("ns/a", out var a) && a.Metadata.ResourceVersion == "7");
    }

    private static V1ConfigMap ConfigMap(string name, string resourceVersion) =>
        new() { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "ns", ResourceVersion = resourceVersion } };

    /// <summary>Lists and watches that return what the test queued; a second watch waits until the test stops the informer.</summary>
    private sealed class ScriptedListWatch : IListWatch<V1ConfigMap>
    {
        public Queue<(IList<V1ConfigMap> Items, string Version)> Lists { get; } = new();
        public Queue<Func<string, IEnumerable<(WatchEventType, V1ConfigMap)>>> Watches { get; } = new();
        public List<string> WatchedFrom { get; } = [];
        public TaskCompletionSource SecondWatchStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<(IList<V1ConfigMap> Items, string ResourceVersion)> ListAsync(CancellationToken cancellation) =>
            Task.FromResult(Lists.Dequeue());

        public async IAsyncEnumerable<(WatchEventType Type, V1ConfigMap Object)> WatchAsync(string resourceVersion, [EnumeratorCancellation] CancellationToken cancellation)
        {
            WatchedFrom.Add(resourceVersion);
            if (WatchedFrom.Count >= 2)
            {
                SecondWatchStarted.TrySetResult();
            }

            if (Watches.TryDequeue(out var script))
            {
                foreach (var item in script(resourceVersion))
                {
                    yield return item;
                }

                yield break;
            }

            await Task.Delay(Timeout.Infinite, cancellation);
        }
    }
}
