using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BatchRunner.Kubernetes.Client;
using k8s;
using k8s.Models;

/// <summary>
/// The controller's share of a burst that is its own to spend: decoding the watch events of the round's Jobs (added,
/// then counted by the Job controller) and BatchJobs as the informers do, against the library's watcher decoding the
/// same lines as the informers did before (custom objects then written out and read again). The objects are the
/// round's own, as the API server holds them (managedFields included).
/// </summary>
static class WatchDecoding
{
    private const int Repeats = 7;

    public static async Task<string> CompareAsync(IKubernetes admin, string ns)
    {
        var jobs = (await admin.BatchV1.ListNamespacedJobAsync(ns)).Items.Select(item => KubernetesJson.Serialize(item)).ToList();
        var batchJobs = (await admin.CustomObjects.ListNamespacedCustomObjectAsync<BatchJobObjectList>(
            BatchRunner.Kubernetes.BatchJobResource.Group, BatchRunner.Kubernetes.BatchJobResource.Version, ns, BatchRunner.Kubernetes.BatchJobResource.Plural)).Items.Select(item => KubernetesJson.Serialize(item)).ToList();
        var jobLines = Lines(jobs.SelectMany(j => new[] { ("ADDED", j), ("MODIFIED", j) }));
        var batchJobLines = Lines(batchJobs.Select(b => ("ADDED", b)));

        var ours = Measure(() => Ours<V1Job>(jobLines) + Ours<BatchJobObject>(batchJobLines));
        var library = Measure(() => Library<V1Job>(jobLines, o => o) + Library<object>(batchJobLines, AsBatchJob));
        return string.Create(CultureInfo.InvariantCulture,
            $"{jobs.Count * 2} Job and {batchJobs.Count} BatchJob events ({(jobLines.Length + batchJobLines.Length) / 1024} KiB): {ours.Milliseconds:F1} ms, {ours.Megabytes:F1} MB allocated; the library's watcher {library.Milliseconds:F1} ms, {library.Megabytes:F1} MB ({library.Milliseconds / ours.Milliseconds:F2}× the time)");
    }

    /// <summary>How the informers took a custom object from the library's watcher before: written out, read again.</summary>
    private static BatchJobObject AsBatchJob(object item) => KubernetesJson.Deserialize<BatchJobObject>(((JsonElement)item).GetRawText());

    private static byte[] Lines(IEnumerable<(string Type, string Json)> events) =>
        Encoding.UTF8.GetBytes(string.Concat(events.Select(e => $$"""{"type":"{{e.Type}}","object":{{e.Json}}}""" + "\n")));

    /// <summary>The median of <see cref="Repeats"/> passes after one to warm up, and the allocations of one pass.</summary>
    private static (double Milliseconds, double Megabytes) Measure(Func<int> decodeAll)
    {
        var expected = decodeAll();
        var times = new List<double>();
        var allocated = 0L;
        for (var i = 0; i < Repeats; i++)
        {
            var before = GC.GetTotalAllocatedBytes(precise: true);
            var watch = Stopwatch.StartNew();
            if (decodeAll() != expected)
            {
                throw new InvalidOperationException("a pass decoded a different number of events");
            }

            times.Add(watch.Elapsed.TotalMilliseconds);
            allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        }

        return (times.Order().ElementAt(Repeats / 2), allocated / 1e6);
    }

    private static int Ours<T>(byte[] lines)
    {
        using var reader = new LineReader(new MemoryStream(lines), WatchEvents.MaxEventBytes);
        var decoded = 0;
        while (reader.ReadLineAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult() is { } line)
        {
            decoded += WatchEvents.Decode<T>(line.Span).Object is null ? 0 : 1;
        }

        return decoded;
    }

    /// <summary>The library's watcher on the same bytes, read as it reads an API server's stream.</summary>
    private static int Library<T>(byte[] lines, Func<T, object> then)
    {
        var decoded = 0;
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Exception? failure = null;
        using var watcher = new Watcher<T>(
            () => Task.FromResult<TextReader>(new StreamReader(new MemoryStream(lines))),
            (_, item) => decoded += then(item) is null ? 0 : 1,
            e => failure ??= e,
            () => closed.TrySetResult());
        closed.Task.GetAwaiter().GetResult();
        return failure is null ? decoded : throw new InvalidOperationException("the library's watcher failed", failure);
    }
}
