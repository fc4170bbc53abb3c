using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using k8s.Models;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// Every call the reconciler makes to the cluster, and nothing else: the controller's ClusterRole grants exactly
/// these. Reads come from informer caches where one exists. Defined here, where it is consumed, so the reconciler's
/// unit tests substitute an in-memory cluster; the integration tests use the real one.
/// </summary>
public interface IClusterApi
{
    ClusterCapabilities Capabilities { get; }

    /// <summary>
    /// New BatchJobs are arriving one on another (<see cref="DispatchPressure"/>): a run just dispatched may leave its
    /// first status write for when they pause, so the API server's time goes to the Jobs first.
    /// </summary>
    bool Busy { get; }

    /// <summary>
    /// The Job controller counted one of the controller's Jobs moments ago (<see cref="DispatchPressure.Counting"/>):
    /// it is working through its queue, and a Job it has not counted yet gets its turn.
    /// </summary>
    bool JobsBeingCounted { get; }

    /// <summary>From the BatchJob informer's cache.</summary>
    BatchJobObject? GetBatchJob(string key);

    /// <summary>From the Job informer's cache.</summary>
    V1Job? GetJob(string ns, string name);

    /// <summary>The controller's Jobs in a namespace, as the informer's cache holds them.</summary>
    IEnumerable<V1Job> JobsIn(string ns);

    /// <summary>Replaces the finalizers, failing with a conflict if the object changed since it was read.</summary>
    Task<BatchJobObject> SetFinalizersAsync(BatchJobObject batchJob, IReadOnlyList<string> finalizers, CancellationToken cancellation);

    Task PatchStatusAsync(BatchJobObject batchJob, BatchJobStatus status, CancellationToken cancellation);

    Task<V1ConfigMap?> GetConfigMapAsync(string ns, string name, CancellationToken cancellation);

    /// <summary>Creates the ConfigMap; false when one of that name already exists.</summary>
    Task<bool> CreateConfigMapAsync(V1ConfigMap configMap, CancellationToken cancellation);

    Task DeleteConfigMapAsync(string ns, string name, CancellationToken cancellation);

    Task<IReadOnlyList<V1ConfigMap>> ListConfigMapsAsync(string ns, string labelSelector, CancellationToken cancellation);

    /// <summary>Creates the Job; false when one of that name already exists.</summary>
    /// <exception cref="ObjectRefusedException">The API server refused it for good (a quota, an admission webhook, its size).</exception>
    Task<bool> CreateJobAsync(V1Job job, CancellationToken cancellation);

    /// <summary>Deletes the Job in the foreground: it stays until its pods are gone. No error if it is gone.</summary>
    Task DeleteJobAsync(string ns, string name, CancellationToken cancellation);

    /// <summary>Asks the API server itself (not a cache) whether the Job still exists.</summary>
    Task<bool> JobExistsAsync(string ns, string name, CancellationToken cancellation);

    Task PatchJobAsync(string ns, string name, int parallelism, long? activeDeadlineSeconds, CancellationToken cancellation);

    Task<IReadOnlyList<V1Pod>> ListPodsAsync(string ns, string labelSelector, CancellationToken cancellation);

    /// <summary>A Kubernetes Event on the BatchJob (type Normal or Warning); failing to record one never fails a reconcile.</summary>
    Task RecordEventAsync(BatchJobObject batchJob, string type, string reason, string message, CancellationToken cancellation);
}

/// <summary>
/// The API server refused to create an object for a reason retrying at once does not fix (403: a quota or an admission
/// webhook; 422: invalid; 413: too large): the BatchJob's status says so rather than the controller's log alone.
/// </summary>
public sealed class ObjectRefusedException(string kind, string name, int statusCode, string message, Exception? inner = null)
    : Exception($"{kind} {name} refused ({statusCode}): {message}", inner)
{
    public int StatusCode { get; } = statusCode;

    /// <summary>What the API server said, without the object's kind and name.</summary>
    public string Reason { get; } = message;
}
