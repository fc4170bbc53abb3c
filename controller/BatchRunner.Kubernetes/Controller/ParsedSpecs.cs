using System.Collections.Concurrent;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Client;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// Each BatchJob's spec as the parser read it, read again only when what the parser reads changed: another object of
/// that name, a new generation (the spec) or other labels. A BatchJob is reconciled and scheduled many times for
/// every time its spec changes; parsing and validating it each time was most of a reconcile's work in a burst.
/// </summary>
public sealed class ParsedSpecs
{
    private readonly ConcurrentDictionary<string, Entry> _byKey = new(StringComparer.Ordinal);

    private sealed record Entry(string? Uid, string? ResourceVersion, long Generation, string Labels, ParseResult Parsed);

    public int Count => _byKey.Count;

    public ParseResult Of(BatchJobObject batchJob)
    {
        var key = ObjectKey.Of(batchJob);
        var (uid, version) = (batchJob.Metadata.Uid, batchJob.Metadata.ResourceVersion);
        _byKey.TryGetValue(key, out var entry);
        if (entry is not null && uid is not null && entry.Uid == uid && version is not null && entry.ResourceVersion == version)
        {
            // The very object read last time: nothing to compare.
            return entry.Parsed;
        }

        var (generation, labels) = (batchJob.Metadata.Generation ?? 0, LabelsOf(batchJob));
        var parsed = entry is not null && uid is not null && entry.Uid == uid && entry.Generation == generation && entry.Labels == labels
            ? entry.Parsed
            : BatchJobParser.FromNode(batchJob.ToDocument());
        _byKey[key] = new Entry(uid, version, generation, labels, parsed);
        return parsed;
    }

    /// <summary>The BatchJob is gone.</summary>
    public void Forget(string key) => _byKey.TryRemove(key, out _);

    private static string LabelsOf(BatchJobObject batchJob) =>
        batchJob.Metadata.Labels is { Count: > 0 } labels
            ? string.Join('\n', labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"))
            : "";
}
