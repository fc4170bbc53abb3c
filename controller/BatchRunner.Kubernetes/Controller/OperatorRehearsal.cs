using System.Text;
using System.Text.Json;
using BatchRunner.Backends;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Prometheus;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>What the rehearsal went through: the Job it built and the status it wrote.</summary>
public sealed record RehearsalOutcome(string JobName, int JobBytes, string? Phase, int StatusWrites);

/// <summary>
/// The path every BatchJob takes, walked once on objects in memory before the replica leads: its watch event decoded,
/// its spec parsed, a scheduling cycle, the reconcile that builds and sends its Job (serialized), the Job's watch
/// events, and the status write. A new leader meets its whole backlog at once, and code that
/// precompilation cannot reach (serializers and collections instantiated over the Kubernetes models) was compiled
/// on that path, by the first BatchJobs, while the API server waited (tests/bench/operator.sh: a controller that had
/// dispatched two BatchJobs took 0.5 s less CPU over the next 500, and kubectl beside it went correspondingly faster).
/// Nothing here reaches the cluster, the controller's metrics or its logs.
/// </summary>
public static class OperatorRehearsal
{
    private const string Namespace = "batchrunner-rehearsal";

    /// <summary>A BatchJob as the API server sends one (the CRD's defaults filled in): a sweep, as kubectl apply writes it.</summary>
    private static readonly string BatchJobJson = $$$"""
        {"apiVersion":"{{{BatchJobResource.ApiVersion}}}","kind":"{{{BatchJobResource.Kind}}}",
         "metadata":{"name":"rehearsal","namespace":"{{{Namespace}}}","uid":"00000000-0000-0000-0000-000000000001","generation":1,"resourceVersion":"1",
           "creationTimestamp":"2026-01-01T00:00:00Z","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},
         "spec":{"backend":"kubernetes","image":"busybox:1.36","command":["/bin/true"],"completions":4,"parallelism":2,
           "sweep":{"grid":{"rate":[0.5,0.9]},"repeats":2,"seed":7},"env":[{"name":"MODE","value":"rehearsal"}]}}
        """;

    /// <summary>Walks the path once; throws if any step fails (the caller logs it and goes on: a rehearsal is never required).</summary>
    public static async Task<RehearsalOutcome> RunAsync(DispatchSettings settings, TimeProvider time, CancellationToken cancellation)
    {
        var cluster = new RehearsalCluster(WatchEvent<BatchJobObject>("ADDED", BatchJobJson));
        var logs = NullLoggerFactory.Instance;
        var backends = new BackendRegistry("the rehearsal", [new KubernetesJobBackend(cluster, settings, logs.CreateLogger<KubernetesJobBackend>(), time)], []);
        var specs = new ParsedSpecs();
        var board = new AdmissionBoard();
        var key = cluster.BatchJob.Key;
        var reconciler = new BatchJobReconciler(cluster, backends, settings.Results?.Uri, time, logs.CreateLogger<BatchJobReconciler>(), admissions: board, specs: specs);
        using (var scheduler = new QueueScheduler(cluster, board, backends.Names, _ => { }, new ControllerMetrics(Metrics.NewCustomRegistry()), time, logs.CreateLogger<QueueScheduler>(), specs))
        {
            await scheduler.CycleAsync(cancellation).ConfigureAwait(false);
        }

        // Dispatch: the Job is built, sent and read back; then it comes back through the Job watch, counted by the
        // Job controller, and that look writes the BatchJob's status.
        await reconciler.ReconcileAsync(key, cancellation).ConfigureAwait(false);
        var job = cluster.CreatedJob ?? throw new InvalidOperationException(
            $"the rehearsal's reconcile created no Job: {(cluster.BatchJob.Status is { } written ? written.GetRawText() : "no status written")}");
        cluster.CountJob(time.GetUtcNow());
        await reconciler.ReconcileAsync(key, cancellation).ConfigureAwait(false);
        var status = BatchJobStatus.FromJson(cluster.BatchJob.Status);
        return new RehearsalOutcome(job.Metadata.Name, cluster.JobBytes, status.Phase?.ToString(), cluster.StatusWrites);
    }

    /// <summary>An object as the informers read it off a watch.</summary>
    private static T WatchEvent<T>(string type, string json) =>
        WatchEvents.Decode<T>(Encoding.UTF8.GetBytes($$"""{"type":"{{type}}","object":{{json}}}""")).Object;

    /// <summary>One BatchJob and its Jobs in memory; writes go through the same serializers as the API's.</summary>
    private sealed class RehearsalCluster(BatchJobObject batchJob) : IClusterApi, IQueueState
    {
        private readonly Dictionary<string, V1Job> _jobs = new(StringComparer.Ordinal);

        public BatchJobObject BatchJob { get; private set; } = batchJob;

        public V1Job? CreatedJob { get; private set; }

        public int JobBytes { get; private set; }

        public int StatusWrites { get; private set; }

        public ClusterCapabilities Capabilities { get; } = ClusterCapabilities.FromVersion("1", "30");

        public bool Busy => false;

        public bool JobsBeingCounted => false;

        public IEnumerable<BatchJobObject> BatchJobs => [BatchJob];

        public IEnumerable<QueueObject> Queues => [];

        public Task PatchQueueStatusAsync(string name, System.Text.Json.Nodes.JsonObject status, CancellationToken cancellation) => Task.CompletedTask;

        public BatchJobObject? GetBatchJob(string key) => key == BatchJob.Key ? BatchJob : null;

        public V1Job? GetJob(string ns, string name) => _jobs.GetValueOrDefault(name);

        public IEnumerable<V1Job> JobsIn(string ns) => _jobs.Values;

        public Task<bool> CreateJobAsync(V1Job job, CancellationToken cancellation)
        {
            // What the client sends (the answer is not read), and the Job as the watch brings it back.
            var sent = KubernetesJson.Serialize(job);
            JobBytes = Encoding.UTF8.GetByteCount(sent);
            CreatedJob = WatchEvent<V1Job>("ADDED", sent);
            CreatedJob.Metadata.ResourceVersion = "2";
            _jobs[job.Metadata.Name] = CreatedJob;
            return Task.FromResult(true);
        }

        /// <summary>The Job controller counted the Job's first pod: the Job watch brings it back as a changed Job.</summary>
        public void CountJob(DateTimeOffset now)
        {
            var job = CreatedJob!;
            job.Status = new V1JobStatus { Active = 1, StartTime = now.UtcDateTime };
            _jobs[job.Metadata.Name] = WatchEvent<V1Job>("MODIFIED", KubernetesJson.Serialize(job));
        }

        public Task PatchStatusAsync(BatchJobObject batchJob, BatchJobStatus status, CancellationToken cancellation)
        {
            // The patch as sent, and the object the API server answers with (a new resourceVersion, the status applied).
            var patch = MergePatches.Status(status);
            using var patched = JsonDocument.Parse(patch);
            var answer = new BatchJobObject { Metadata = batchJob.Metadata, Spec = batchJob.Spec, Status = patched.RootElement.GetProperty("status").Clone() };
            answer.Metadata.ResourceVersion = (++StatusWrites + 10).ToString(System.Globalization.CultureInfo.InvariantCulture);
            using var text = new MemoryStream(Encoding.UTF8.GetBytes(KubernetesJson.Serialize(answer)));
            BatchJob = KubernetesJson.Deserialize<BatchJobObject>(text);
            return Task.CompletedTask;
        }

        public Task RecordEventAsync(BatchJobObject batchJob, string type, string reason, string message, CancellationToken cancellation) => Task.CompletedTask;

        public Task<IReadOnlyList<V1Pod>> ListPodsAsync(string ns, string labelSelector, CancellationToken cancellation) => Task.FromResult<IReadOnlyList<V1Pod>>([]);

        public Task<BatchJobObject> SetFinalizersAsync(BatchJobObject batchJob, IReadOnlyList<string> finalizers, CancellationToken cancellation) => throw Unexpected();

        public Task<V1ConfigMap?> GetConfigMapAsync(string ns, string name, CancellationToken cancellation) => throw Unexpected();

        // The namespace's shared scripts, on the path of every small plan; a plan ConfigMap is not.
        public Task<bool> CreateConfigMapAsync(V1ConfigMap configMap, CancellationToken cancellation) =>
            configMap.Metadata.Name == PodEntrypoint.SharedScriptsName ? Task.FromResult(true) : throw Unexpected();

        public Task DeleteConfigMapAsync(string ns, string name, CancellationToken cancellation) => throw Unexpected();

        // Where the shared scripts were just made, other versions' copies are looked for: there are none here.
        public Task<IReadOnlyList<V1ConfigMap>> ListConfigMapsAsync(string ns, string labelSelector, CancellationToken cancellation) =>
            Task.FromResult<IReadOnlyList<V1ConfigMap>>([]);

        public Task DeleteJobAsync(string ns, string name, CancellationToken cancellation) => throw Unexpected();

        public Task<bool> JobExistsAsync(string ns, string name, CancellationToken cancellation) => throw Unexpected();

        public Task PatchJobAsync(string ns, string name, int parallelism, long? activeDeadlineSeconds, CancellationToken cancellation) => throw Unexpected();

        private static NotSupportedException Unexpected([System.Runtime.CompilerServices.CallerMemberName] string call = "") =>
            new($"the rehearsal's happy path does not call {call}");
    }
}
