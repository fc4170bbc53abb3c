using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Status;
using k8s;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>What the queue scheduler reads and writes in the cluster: the informers' caches, and Queue statuses.</summary>
public interface IQueueState
{
    IEnumerable<BatchJobObject> BatchJobs { get; }

    IEnumerable<QueueObject> Queues { get; }

    Task PatchQueueStatusAsync(string name, JsonObject status, CancellationToken cancellation);
}

/// <summary>
/// The leader's scheduling loop: a cycle (<see cref="QueueCycle"/>) over every BatchJob and Queue in the informers'
/// caches, run soon after anything changes (at most every <see cref="MinInterval"/>) and every <see cref="Tick"/>
/// for estimates and usage decay. Its decisions go to the <see cref="AdmissionBoard"/>, and the BatchJobs whose
/// standing changed are reconciled; each Queue's status says what it holds. Level-based: the state is read whole
/// each cycle, and tenants' usage is kept in the Queues' statuses, so a new leader decides as the last one did.
/// </summary>
public sealed class QueueScheduler(
    IQueueState cluster, AdmissionBoard board, IReadOnlyList<Backend> backends, Action<string> reconcile, ControllerMetrics metrics, TimeProvider time, ILogger<QueueScheduler> log,
    ParsedSpecs? specs = null)
    : IDisposable
{
    private readonly ParsedSpecs _specs = specs ?? new();

    public static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan Tick = TimeSpan.FromSeconds(5);

    /// <summary>How often a Queue's status is rewritten for its tenants' usage alone.</summary>
    private static readonly TimeSpan UsageWriteInterval = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim _poked = new(0, 1);
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Written, DateTimeOffset At)> _queueStatuses = new(StringComparer.Ordinal);
    private readonly HashSet<string> _admitted = new(StringComparer.Ordinal);
    private IReadOnlyList<TenantUsage>? _usage;
    private TimeSpan _lastCycle;

    private long _cycles;

    /// <summary>
    /// What a BatchJob brings to a cycle, derived from the object at one resourceVersion: derived again only when it
    /// changes, so a cycle over BatchJobs that did not change costs a lookup each, not a status read and a workload
    /// built for every one of them ten times a second while others arrive.
    /// </summary>
    private sealed record Entry(string? ResourceVersion, IReadOnlyList<QueuedWorkload> Queued, string Key, DateTimeOffset Created)
    {
        /// <summary>The last cycle that found the BatchJob: an entry older than the current cycle is of one gone.</summary>
        public long SeenIn { get; set; }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    public void Dispose() => _poked.Dispose();

    /// <summary>Something changed: a cycle runs soon.</summary>
    public void Poke()
    {
        try
        {
            _poked.Release();
        }
        catch (SemaphoreFullException)
        {
            // A cycle is due already.
        }
    }

    public async Task RunAsync(CancellationToken cancellation)
    {
        while (!cancellation.IsCancellationRequested)
        {
            try
            {
                await CycleAsync(cancellation).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // A bad cycle (the API server refused a Queue status) is tried again; decisions already published stand.
                log.LogWarning(e, "A scheduling cycle failed; trying again");
            }

            try
            {
                // A cycle reads every BatchJob: while many change at once, cycles are spaced by twice their own
                // length, so scheduling never takes more than a third of a core from the API server it waits on.
                await Task.Delay(Max(MinInterval, 2 * _lastCycle), time, cancellation).ConfigureAwait(false);
                await _poked.WaitAsync(Tick, cancellation).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One cycle: read, decide, publish, reconcile what changed, write the Queues' statuses.</summary>
    public async Task<CycleResult> CycleAsync(CancellationToken cancellation)
    {
        var started = Stopwatch.GetTimestamp();
        var now = time.GetUtcNow();
        var queueObjects = cluster.Queues.ToList();
        var (definitions, refused) = Definitions(queueObjects);
        _usage ??= UsageFrom(queueObjects);
        var (queued, created) = Workloads();
        var result = QueueCycle.Run(definitions, queued, _usage, now, refused);
        var standings = result.Standings;
        _usage = result.Usage;

        foreach (var key in board.Publish(standings, now).Select(OverflowPlan.OwnerOf).Distinct(StringComparer.Ordinal))
        {
            reconcile(key);
        }

        ObserveAdmissions(standings, created, now);
        _lastCycle = Stopwatch.GetElapsedTime(started);
        metrics.SchedulerCycleDuration.Observe(_lastCycle.TotalSeconds);
        await WriteQueueStatusesAsync(queueObjects, result, refused, now, cancellation).ConfigureAwait(false);
        return result;
    }

    /// <summary>Every Queue that reads, and the default queue unless one is named so; refused ones with their errors.</summary>
    private (IReadOnlyList<QueueDefinition> Definitions, IReadOnlyDictionary<string, string> Refused) Definitions(List<QueueObject> queueObjects) =>
        QueueDefinitionReader.ReadAll(queueObjects.Where(q => q.Metadata.DeletionTimestamp is null)
            .Select(q => (q.Metadata.Name, q.Spec is { } element ? JsonNode.Parse(element.GetRawText()) : null, "spec")), backends);

    /// <summary>Tenants' usage as the Queues' statuses last recorded it: where a new leader carries on from.</summary>
    private static List<TenantUsage> UsageFrom(List<QueueObject> queueObjects) =>
        [.. queueObjects.SelectMany(q => QueueSnapshot.UsageOf(q.Metadata.Name, Previous(q)?["tenants"]))];

    /// <summary>The BatchJobs that may still run indexes, as the scheduler sees them; with each one's creation time.</summary>
    private (List<QueuedWorkload> Queued, Dictionary<string, DateTimeOffset> Created) Workloads()
    {
        var cycle = ++_cycles;
        var queued = new List<QueuedWorkload>(_entries.Count);
        var created = new Dictionary<string, DateTimeOffset>(_entries.Count, StringComparer.Ordinal);
        var found = 0;
        foreach (var batchJob in cluster.BatchJobs)
        {
            var id = batchJob.Metadata.Uid ?? batchJob.Key;
            var version = batchJob.Metadata.ResourceVersion;
            if (!_entries.TryGetValue(id, out var entry) || version is null || entry.ResourceVersion != version)
            {
                _entries[id] = entry = Derive(batchJob);
            }

            entry.SeenIn = cycle;
            found++;
            if (entry.Queued.Count > 0)
            {
                queued.AddRange(entry.Queued);
                created[entry.Key] = entry.Created;
            }
        }

        // Forget BatchJobs gone.
        if (_entries.Count > found)
        {
            foreach (var gone in _entries.Where(e => e.Value.SeenIn != cycle).Select(e => e.Key).ToList())
            {
                _entries.Remove(gone);
            }
        }

        return (queued, created);
    }

    /// <summary>The workloads a BatchJob is (none when it runs nothing more: finished, cancelled, going, or invalid).</summary>
    private Entry Derive(BatchJobObject batchJob)
    {
        var key = batchJob.Key;
        var creation = batchJob.Metadata.CreationTimestamp is { } at ? new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)) : time.GetUtcNow();
        var status = BatchJobStatus.FromJson(batchJob.Status);
        if (batchJob.Metadata.DeletionTimestamp is not null || status.IsTerminal
            || batchJob.Metadata.Annotations?.TryGetValue(BatchJobResource.CancelAnnotation, out var cancel) == true && cancel == "true"
            || _specs.Of(batchJob).Job is not { } job)
        {
            return new Entry(batchJob.Metadata.ResourceVersion, [], key, creation);
        }

        var spec = job.Spec;
        var queue = spec.Queue ?? QueueDefinition.DefaultName;
        // A Job dispatched before its BatchJob had a queue runs at its parallelism: that is what it holds.
        var applied = status.Queue is { } shown ? shown.Allowance : status.JobName is not null ? spec.Parallelism : 0;
        var workload = new Workload(key, batchJob.Metadata.NamespaceProperty, queue, spec.Backend, spec.Priority, creation.UtcTicks, spec.Parallelism, 0, 0,
            spec.Resources.MilliCpu, spec.Resources.MemoryBytes, spec.PriorityClass, applied);
        var queued = new List<QueuedWorkload>(1);
        if (status.Backends is { Count: > 0 } shares && status.Rerun is not { Number: > 0 })
        {
            // A run its queue split: each backend's part competes in that backend's pool, within its own parallelism.
            foreach (var (share, i) in shares.Select((share, i) => (share, i)))
            {
                // Its own key stays with spec.backend's part, whatever is left of it (its standing is looked up by that key).
                if (i > 0 && share.IsTerminal || !Backend.TryParse(share.Name, out var on))
                {
                    continue;
                }

                var left = share.IsTerminal ? 0 : Math.Max(0, IndexRanges.Count(share.Indexes) - share.Succeeded - share.Failed);
                queued.Add(new QueuedWorkload(workload with
                {
                    Key = i == 0 ? key : OverflowPlan.KeyOf(key, on),
                    Backend = on,
                    Parallelism = share.Parallelism,
                    Remaining = left,
                    Running = Math.Min(left, share.Active),
                    AppliedAllowance = i == 0 ? Math.Min(applied, share.Parallelism) : 0,
                }, status.Queue?.Runtimes));
            }
        }
        else
        {
            var remaining = Math.Max(0, spec.Completions - (status.Succeeded ?? 0) - (status.Failed ?? 0));
            queued.Add(new QueuedWorkload(workload with { Remaining = remaining, Running = Math.Min(remaining, status.Active ?? 0) }, status.Queue?.Runtimes, status.NothingDispatched));
        }

        return new Entry(batchJob.Metadata.ResourceVersion, queued, key, creation);
    }

    private void ObserveAdmissions(IReadOnlyDictionary<string, Standing> standings, Dictionary<string, DateTimeOffset> created, DateTimeOffset now)
    {
        foreach (var (key, standing) in standings)
        {
            if (standing.Allowance > 0 && _admitted.Add(key) && created.TryGetValue(key, out var at))
            {
                metrics.AdmissionWait.WithLabels(standing.Queue).Observe(Math.Max(0, (now - at).TotalSeconds));
            }
        }

        _admitted.IntersectWith(standings.Keys);
    }

    private async Task WriteQueueStatusesAsync(List<QueueObject> queueObjects, CycleResult result, IReadOnlyDictionary<string, string> refused, DateTimeOffset now, CancellationToken cancellation)
    {
        var summaries = result.Queues.ToDictionary(q => q.Name, StringComparer.Ordinal);
        metrics.RecordQueues(result.Queues);

        foreach (var queue in queueObjects.Where(q => q.Metadata.DeletionTimestamp is null))
        {
            var name = queue.Metadata.Name;
            var previous = Previous(queue);
            var status = QueueStatusDocument.Of(summaries.GetValueOrDefault(name), refused.GetValueOrDefault(name), queue.Metadata.Generation ?? 0, previous, now);
            var decided = QueueStatusDocument.WithoutUsage(status);
            // What the object shows counts as written (a new leader does not rewrite what the last one wrote).
            var last = _queueStatuses.TryGetValue(name, out var written) ? written : (Written: QueueStatusDocument.WithoutUsage(previous), At: DateTimeOffset.MinValue);
            if (last.Written == decided && (now - last.At < UsageWriteInterval || !QueueStatusDocument.UsageChanged(previous, status)))
            {
                continue;
            }

            await cluster.PatchQueueStatusAsync(name, status, cancellation).ConfigureAwait(false);
            _queueStatuses[name] = (decided, now);
        }
    }

    private static JsonObject? Previous(QueueObject queue) => queue.Status is { ValueKind: JsonValueKind.Object } status ? JsonNode.Parse(status.GetRawText()) as JsonObject : null;
}

/// <summary>A Queue's status as the scheduler writes it, and the parts compared to decide whether to write it.</summary>
public static class QueueStatusDocument
{
    public static JsonObject Of(QueueSummary? summary, string? refusal, long generation, JsonObject? previous, DateTimeOffset now)
    {
        var valid = refusal is null;
        var reason = valid ? "QueueValid" : "InvalidQueue";
        var message = valid ? "the queue is valid" : refusal!;
        var before = previous?["conditions"] is JsonArray conditions ? conditions.OfType<JsonObject>().FirstOrDefault(c => (string?)c["type"] == "Valid") : null;
        var since = before is not null && (string?)before["status"] == (valid ? "True" : "False") && before["lastTransitionTime"] is JsonValue t ? t.GetValue<string>() : Time(now);
        return new JsonObject
        {
            ["observedGeneration"] = generation,
            ["backends"] = summary is null ? null : string.Join(",", summary.Backends.Select(b => b.Name)),
            ["pendingIndexes"] = summary?.PendingIndexes ?? 0,
            ["admittedIndexes"] = summary?.AdmittedIndexes ?? 0,
            ["waitingBatchJobs"] = summary?.WaitingBatchJobs ?? 0,
            // Null, not "", when no tenant holds or wants anything: a merge patch removes it (and an API server of
            // 1.20 refuses an empty string in a custom resource's status).
            ["usage"] = summary?.Usage is { Length: > 0 } usage ? usage : null,
            ["tenants"] = QueueSnapshot.TenantsJson(summary?.Tenants ?? []),
            ["conditions"] = new JsonArray(new JsonObject
            {
                ["type"] = "Valid",
                ["status"] = valid ? "True" : "False",
                ["reason"] = reason,
                ["message"] = message,
                ["observedGeneration"] = generation,
                ["lastTransitionTime"] = since,
            }),
        };
    }

    /// <summary>The status without the tenants' usage, which moves every cycle: what a decision changed.</summary>
    public static string WithoutUsage(JsonObject? status)
    {
        if (status?.DeepClone() is not JsonObject copy)
        {
            return "";
        }

        if (copy["tenants"] is JsonArray tenants)
        {
            foreach (var tenant in tenants.OfType<JsonObject>())
            {
                tenant.Remove("usageShareSeconds");
                tenant.Remove("usageAt");
                tenant.Remove("share");
            }
        }

        return copy.ToJsonString();
    }

    /// <summary>Whether a tenant's usage moved by more than a hundredth of a share-second since the status was written.</summary>
    public static bool UsageChanged(JsonObject? before, JsonObject after)
    {
        static Dictionary<string, double> Of(JsonObject? status) => (status?["tenants"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(t => t["name"] is JsonValue && t["usageShareSeconds"] is JsonValue)
            .ToDictionary(t => t["name"]!.GetValue<string>(), t => t["usageShareSeconds"]!.GetValue<double>(), StringComparer.Ordinal);
        var (old, now) = (Of(before), Of(after));
        return old.Count != now.Count || now.Any(t => !old.TryGetValue(t.Key, out var o) || Math.Abs(o - t.Value) > 0.01);
    }

    private static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}

/// <summary>The scheduler's view of a real cluster: the informers' caches, and Queue status patches.</summary>
public sealed class ClusterQueueState(k8s.IKubernetes client, Informer<BatchJobObject> batchJobs, Informer<QueueObject> queues) : IQueueState
{
    public IEnumerable<BatchJobObject> BatchJobs => batchJobs.Items;

    public IEnumerable<QueueObject> Queues => queues.Items;

    public async Task PatchQueueStatusAsync(string name, JsonObject status, CancellationToken cancellation)
    {
        var patch = new JsonObject { ["status"] = status.DeepClone() }.ToJsonString();
        await client.CustomObjects.PatchClusterCustomObjectStatusAsync(
            new k8s.Models.V1Patch(patch, k8s.Models.V1Patch.PatchType.MergePatch), QueueResource.Group, QueueResource.Version, QueueResource.Plural, name,
            cancellationToken: cancellation).ConfigureAwait(false);
    }
}
