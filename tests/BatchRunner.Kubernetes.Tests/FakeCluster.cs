using System.Globalization;
using System.Net;
using System.Text.Json;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>
/// An API server in memory for the reconciler: BatchJobs, Jobs, ConfigMaps and pods by namespace/name, every write
/// logged in order. Objects are copied in and out, as through the wire. Finalizer patches are compare-and-swap on
/// resourceVersion (a mismatch throws a 409); a deleted Job stays (foreground deletion) until <see cref="FinishDeletions"/>.
/// </summary>
internal sealed class FakeCluster(ClusterCapabilities? capabilities = null) : IClusterApi
{
    private readonly Dictionary<string, BatchJobObject> _batchJobs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, V1Job> _jobs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, V1ConfigMap> _configMaps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _serverVersions = new(StringComparer.Ordinal);
    private long _version = 1;

    public ClusterCapabilities Capabilities { get; } = capabilities ?? ClusterCapabilities.Current;

    /// <summary>Whether new BatchJobs are arriving one on another, as the test says.</summary>
    public bool Busy { get; set; }

    /// <summary>Whether the Job controller is counting other Jobs, as the test says.</summary>
    public bool JobsBeingCounted { get; set; }

    /// <summary>Every write, in order: "finalizers", "status", "create-configmap NAME", "create-job NAME", "patch-job NAME", …</summary>
    public List<string> Writes { get; } = [];

    public List<(string Type, string Reason, string Message)> Events { get; } = [];

    public List<BatchJobStatus> StatusPatches { get; } = [];

    public List<(string Name, int Parallelism, long? ActiveDeadlineSeconds)> JobPatches { get; } = [];

    public List<V1Pod> Pods { get; } = [];

    /// <summary>What the API server answers the shared scripts' ConfigMap (a quota on ConfigMaps, say); null creates it.</summary>
    public string? RefuseSharedScripts { get; set; }

    /// <summary>What the API server answers a Job it refuses (a quota, say); null creates it.</summary>
    public Func<V1Job, string?>? RefuseJob { get; set; }

    public IReadOnlyCollection<V1Job> Jobs => _jobs.Values;

    public IReadOnlyCollection<V1ConfigMap> ConfigMaps => _configMaps.Values;

    /// <summary>Creates or replaces a BatchJob (a kubectl apply); returns its key.</summary>
    public string Apply(BatchJobObject batchJob)
    {
        var stored = Copy(batchJob);
        stored.Metadata.ResourceVersion = NextVersion();
        var key = stored.Key;
        if (_batchJobs.TryGetValue(key, out var old))
        {
            stored.Status = old.Status;
            stored.Metadata.Finalizers = old.Metadata.Finalizers;
            stored.Metadata.DeletionTimestamp ??= old.Metadata.DeletionTimestamp;
        }

        Store(stored);
        return key;
    }

    /// <summary>Changes a BatchJob as another client would (spec edits bump the generation, as the API server does).</summary>
    public void Update(string key, Action<BatchJobObject> change)
    {
        var stored = Copy(_batchJobs[key]);
        change(stored);
        stored.Metadata.ResourceVersion = NextVersion();
        Store(stored);
    }

    /// <summary>Another writer changes the BatchJob on the server; this client's cache does not see it yet.</summary>
    public void ChangeOnServerOnly(string key) => _serverVersions[key] = long.Parse(NextVersion(), CultureInfo.InvariantCulture);

    /// <summary>
    /// Deletes a BatchJob as the API server does: one holding finalizers is marked and stays until they are removed;
    /// one holding none goes at once (what it owns is the garbage collector's, which this cluster does not run).
    /// </summary>
    public void Delete(string key)
    {
        if (_batchJobs[key].Metadata.Finalizers is not { Count: > 0 })
        {
            _batchJobs.Remove(key);
            _serverVersions.Remove(key);
            return;
        }

        Update(key, b => b.Metadata.DeletionTimestamp = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc));
    }

    public BatchJobObject? Find(string key) => _batchJobs.TryGetValue(key, out var value) ? Copy(value) : null;

    public BatchJobStatus StatusOf(string key) => BatchJobStatus.FromJson(_batchJobs[key].Status);

    public V1Job? Job(string name) => _jobs.TryGetValue($"{Specs.Namespace}/{name}", out var job) ? job : null;

    public V1ConfigMap? ConfigMap(string name) => _configMaps.TryGetValue($"{Specs.Namespace}/{name}", out var map) ? map : null;

    /// <summary>A Job put there by someone (a controller that died, another tool): stored as given.</summary>
    public void AddJob(V1Job job) => _jobs[$"{job.Metadata.NamespaceProperty}/{job.Metadata.Name}"] = job;

    public void SetJobStatus(string name, V1JobStatus status) => _jobs[$"{Specs.Namespace}/{name}"].Status = status;

    /// <summary>The Job controller and garbage collector finish: Jobs being deleted go.</summary>
    public void FinishDeletions()
    {
        foreach (var key in _jobs.Where(j => j.Value.Metadata.DeletionTimestamp is not null).Select(j => j.Key).ToList())
        {
            _jobs.Remove(key);
        }
    }

    /// <summary>
    /// Reconciles as the operator does: a Job the reconcile created comes back through the Job informer at once, and
    /// that look (which writes the dispatch into the status) follows.
    /// </summary>
    public async Task<ReconcileResult> ReconcileAsync(BatchJobReconciler reconciler, string key)
    {
        var created = Writes.Count(w => w.StartsWith("create-job ", StringComparison.Ordinal));
        var result = await reconciler.ReconcileAsync(key, CancellationToken.None);
        return Writes.Count(w => w.StartsWith("create-job ", StringComparison.Ordinal)) > created ? await reconciler.ReconcileAsync(key, CancellationToken.None) : result;
    }

    public BatchJobObject? GetBatchJob(string key) => Find(key);

    public V1Job? GetJob(string ns, string name) => _jobs.GetValueOrDefault($"{ns}/{name}");

    public IEnumerable<V1Job> JobsIn(string ns) => _jobs.Values.Where(j => j.Metadata.NamespaceProperty == ns);

    public Task<BatchJobObject> SetFinalizersAsync(BatchJobObject batchJob, IReadOnlyList<string> finalizers, CancellationToken cancellation)
    {
        var key = batchJob.Key;
        if (!_batchJobs.TryGetValue(key, out var current))
        {
            throw Failure(HttpStatusCode.NotFound);
        }

        if (batchJob.Metadata.ResourceVersion != _serverVersions[key].ToString(CultureInfo.InvariantCulture))
        {
            throw Failure(HttpStatusCode.Conflict);
        }

        Writes.Add("finalizers");
        var stored = Copy(current);
        stored.Metadata.Finalizers = [.. finalizers];
        stored.Metadata.ResourceVersion = NextVersion();
        if (stored.Metadata.DeletionTimestamp is not null && finalizers.Count == 0)
        {
            _batchJobs.Remove(key);
            _serverVersions.Remove(key);
        }
        else
        {
            Store(stored);
        }

        return Task.FromResult(Copy(stored));
    }

    public Task PatchStatusAsync(BatchJobObject batchJob, BatchJobStatus status, CancellationToken cancellation)
    {
        Writes.Add("status");
        StatusPatches.Add(status);
        var stored = Copy(_batchJobs[batchJob.Key]);
        stored.Status = JsonSerializer.SerializeToElement(status, BatchJobStatus.TypeInfo);
        stored.Metadata.ResourceVersion = NextVersion();
        Store(stored);
        return Task.CompletedTask;
    }

    /// <summary>
    /// The namespaces holding the shared entrypoint scripts, apart from <see cref="ConfigMaps"/> (a run's own): the
    /// test namespace has them, as after its first BatchJob, so writes are counted per BatchJob; their creation (once a
    /// namespace) is tested by taking them away.
    /// </summary>
    public HashSet<string> SharedScripts { get; } = new(StringComparer.Ordinal) { Specs.Namespace };

    public Task<V1ConfigMap?> GetConfigMapAsync(string ns, string name, CancellationToken cancellation) =>
        Task.FromResult(name == PodEntrypoint.SharedScriptsName
            ? SharedScripts.Contains(ns) ? JobManifests.SharedScriptsConfigMap(ns) : null
            : _configMaps.GetValueOrDefault($"{ns}/{name}"));

    public Task<bool> CreateConfigMapAsync(V1ConfigMap configMap, CancellationToken cancellation)
    {
        if (configMap.Metadata.Name == PodEntrypoint.SharedScriptsName)
        {
            if (RefuseSharedScripts is { } refusal)
            {
                throw new ObjectRefusedException("ConfigMap", configMap.Metadata.Name, 403, refusal);
            }

            var created = SharedScripts.Add(configMap.Metadata.NamespaceProperty);
            if (created)
            {
                Writes.Add("create-configmap " + configMap.Metadata.Name);
            }

            return Task.FromResult(created);
        }

        var key = $"{configMap.Metadata.NamespaceProperty}/{configMap.Metadata.Name}";
        if (_configMaps.ContainsKey(key))
        {
            return Task.FromResult(false);
        }

        Writes.Add("create-configmap " + configMap.Metadata.Name);
        _configMaps[key] = configMap;
        return Task.FromResult(true);
    }

    /// <summary>What the API server answers a list of ConfigMaps (a missing list verb, say); null lists them.</summary>
    public string? RefuseConfigMapList { get; set; }

    /// <summary>The namespace's ConfigMaps whose labels match every <c>key=value</c> and <c>!key</c> of the selector, the shared scripts among them.</summary>
    public Task<IReadOnlyList<V1ConfigMap>> ListConfigMapsAsync(string ns, string labelSelector, CancellationToken cancellation)
    {
        if (RefuseConfigMapList is { } refusal)
        {
            throw new InvalidOperationException(refusal);
        }

        var wanted = labelSelector.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2)).ToList();
        IEnumerable<V1ConfigMap> shared = SharedScripts.Contains(ns) ? [JobManifests.SharedScriptsConfigMap(ns)] : [];
        return Task.FromResult<IReadOnlyList<V1ConfigMap>>([.. _configMaps.Values.Where(m => m.Metadata.NamespaceProperty == ns).Concat(shared)
            .Where(m => wanted.All(w => w is [var absent] && absent.StartsWith('!')
                ? m.Metadata.Labels?.ContainsKey(absent[1..]) != true
                : m.Metadata.Labels is { } labels && labels.TryGetValue(w[0], out var value) && value == w[1]))]);
    }

    public Task DeleteConfigMapAsync(string ns, string name, CancellationToken cancellation)
    {
        if (_configMaps.Remove($"{ns}/{name}"))
        {
            Writes.Add("delete-configmap " + name);
        }

        return Task.CompletedTask;
    }

    public Task<bool> CreateJobAsync(V1Job job, CancellationToken cancellation)
    {
        var key = $"{job.Metadata.NamespaceProperty}/{job.Metadata.Name}";
        if (_jobs.ContainsKey(key))
        {
            return Task.FromResult(false);
        }

        if (RefuseJob?.Invoke(job) is { } refusal)
        {
            Writes.Add("refused-job " + job.Metadata.Name);
            throw new ObjectRefusedException("Job", job.Metadata.Name, 403, refusal);
        }

        Writes.Add("create-job " + job.Metadata.Name);
        job.Metadata.Uid = "job-uid-" + NextVersion();
        _jobs[key] = job;
        return Task.FromResult(true);
    }

    public Task DeleteJobAsync(string ns, string name, CancellationToken cancellation)
    {
        if (_jobs.TryGetValue($"{ns}/{name}", out var job))
        {
            Writes.Add("delete-job " + name);
            job.Metadata.DeletionTimestamp ??= new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        }

        return Task.CompletedTask;
    }

    public Task<bool> JobExistsAsync(string ns, string name, CancellationToken cancellation) => Task.FromResult(_jobs.ContainsKey($"{ns}/{name}"));

    public Task PatchJobAsync(string ns, string name, int parallelism, long? activeDeadlineSeconds, CancellationToken cancellation)
    {
        Writes.Add("patch-job " + name);
        JobPatches.Add((name, parallelism, activeDeadlineSeconds));
        var job = _jobs[$"{ns}/{name}"];
        job.Spec.Parallelism = parallelism;
        job.Spec.ActiveDeadlineSeconds = activeDeadlineSeconds;
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<V1Pod>> ListPodsAsync(string ns, string labelSelector, CancellationToken cancellation)
    {
        // The selector forms the controller uses: label=value and !label, joined by commas.
        var requirements = labelSelector.Split(',').Select(r => r.StartsWith('!') ? (Label: r[1..], Value: (string?)null)
            : r.Split('=', 2) is [var l, var v] ? (Label: l, Value: (string?)v) : throw new ArgumentException(labelSelector)).ToList();
        IReadOnlyList<V1Pod> pods = Pods
            .Where(p => p.Metadata.NamespaceProperty == ns && requirements.All(r =>
                r.Value is null ? p.Metadata.Labels?.ContainsKey(r.Label) != true : p.Metadata.Labels?.TryGetValue(r.Label, out var actual) == true && actual == r.Value))
            .ToList();
        return Task.FromResult(pods);
    }

    public Task RecordEventAsync(BatchJobObject batchJob, string type, string reason, string message, CancellationToken cancellation)
    {
        Events.Add((type, reason, message));
        return Task.CompletedTask;
    }

    private void Store(BatchJobObject stored)
    {
        _batchJobs[stored.Key] = stored;
        _serverVersions[stored.Key] = long.Parse(stored.Metadata.ResourceVersion, CultureInfo.InvariantCulture);
    }

    private string NextVersion() => (++_version).ToString(CultureInfo.InvariantCulture);

    private static BatchJobObject Copy(BatchJobObject value) => KubernetesJson.Deserialize<BatchJobObject>(KubernetesJson.Serialize(value));

    private static HttpOperationException Failure(HttpStatusCode code) => new($"Operation returned an invalid status code '{code}'")
    {
        Response = new HttpResponseMessageWrapper(new HttpResponseMessage(code), ""),
    };
}
