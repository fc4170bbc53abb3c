using System.Globalization;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using k8s.Models;

namespace BatchRunner.Kubernetes.Dispatch;

/// <summary>Settings of dispatch that come from the controller's configuration, not from the BatchJob.</summary>
/// <param name="Results">The cluster's results store; null when none is configured.</param>
public sealed record DispatchSettings(int TtlSecondsAfterFinished, ResultsCollection? Results = null)
{
    public static readonly DispatchSettings Default = new(TtlSecondsAfterFinished: 3600);

    /// <summary>Most completions of one Job: a larger run is split into several (<see cref="JobParts"/>).</summary>
    public int MaxCompletionsPerJob { get; init; } = JobParts.MaxCompletions;
}

/// <summary>
/// Collection of results on Kubernetes without the workload knowing the store: an init container from
/// <paramref name="ExecImage"/> (the controller's image, which holds the wrapper at <see cref="ImagePath"/>)
/// copies <c>batchrunner-exec</c> into an emptyDir, and the workload container runs the wrapper, which runs the
/// command and uploads its output and ledger row to the store. S3 settings reach the wrapper as
/// <c>BatchRunner__Results__*</c> variables; credentials come from the pod's identity (IRSA), never from here.
/// </summary>
/// <param name="Uri">The store (<c>s3://bucket/prefix</c>) for BatchJobs whose <c>spec.results.uri</c> names none.</param>
/// <param name="CredentialsSecret">
/// A Secret in the BatchJob's namespace whose keys (<c>AWS_ACCESS_KEY_ID</c>, <c>AWS_SECRET_ACCESS_KEY</c>) become the
/// workload container's environment, for stores without pod identities (MinIO); referenced, never copied.
/// </param>
public sealed record ResultsCollection(
    string Uri, string ExecImage, string? Region = null, string? EndpointUrl = null, bool ForcePathStyle = false, string? CredentialsSecret = null)
{
    /// <summary>Where the controller image keeps the wrapper.</summary>
    public const string ImagePath = "/app/batchrunner-exec";

    /// <summary>Where the workload container finds it.</summary>
    public const string MountPath = "/opt/batchrunner";

    public const string Executable = MountPath + "/batchrunner-exec";

    public const string InitContainer = "batchrunner-exec";

    /// <summary>The workload container's temporary folder, a volume of its own.</summary>
    public const string ScratchPath = "/tmp";

    public const string DefaultExecImage = "batchrunner/controller:latest";
}

/// <summary>
/// Builds the objects a BatchJob dispatches to: one Indexed Job, and its plan ConfigMap when the plan is too large to
/// travel in the Job, all owned by the BatchJob (so deleting it collects them), with deterministic names and labels.
/// Pure: no API calls.
/// </summary>
public static class JobManifests
{
    public const string WorkloadContainer = "workload";

    /// <summary>
    /// Not Kubernetes' default for <c>:latest</c> (Always): an image loaded into the node (minikube image load, kind
    /// load) is used as it is, and a registry is asked only when the node lacks the image. Tags are immutable by
    /// convention; a changed image needs a new tag.
    /// </summary>
    public const string ImagePullPolicy = "IfNotPresent";

    public static V1OwnerReference OwnerOf(string name, string uid) => new()
    {
        ApiVersion = BatchJobResource.ApiVersion,
        Kind = BatchJobResource.Kind,
        Name = name,
        Uid = uid,
        Controller = true,
        BlockOwnerDeletion = true,
    };

    public static Dictionary<string, string> Labels(BatchJob job, string runId) => new(StringComparer.Ordinal)
    {
        [BatchJobResource.ManagedByLabel] = BatchJobResource.ManagedByValue,
        [BatchJobResource.BatchJobLabel] = job.Metadata.Name,
        [BatchJobResource.RunLabel] = runId,
    };

    public static V1ConfigMap PlanConfigMap(BatchJob job, string uid, Dictionary<string, string> planFiles) => new()
    {
        ApiVersion = "v1",
        Kind = "ConfigMap",
        Metadata = new V1ObjectMeta
        {
            Name = BatchJobResource.PlanConfigMapName(job.Metadata.Name),
            NamespaceProperty = job.Metadata.Namespace,
            Labels = Labels(job, RunIdentity.For(job)),
            OwnerReferences = [OwnerOf(job.Metadata.Name, uid)],
        },
        Data = planFiles,
    };

    /// <summary>The namespace's shared scripts (<see cref="PodEntrypoint.SharedScriptsName"/>): labelled as the controller's, owned by nothing.</summary>
    public static V1ConfigMap SharedScriptsConfigMap(string ns) => new()
    {
        ApiVersion = "v1",
        Kind = "ConfigMap",
        Metadata = new V1ObjectMeta
        {
            Name = PodEntrypoint.SharedScriptsName,
            NamespaceProperty = ns,
            Labels = new Dictionary<string, string>(StringComparer.Ordinal) { [BatchJobResource.ManagedByLabel] = BatchJobResource.ManagedByValue },
        },
        Data = PodEntrypoint.SharedScripts(),
    };

    /// <summary>
    /// Whether a job's pods run the results wrapper (the controller collects results): it reads the spec and the
    /// run's variables itself; else the sh entrypoint, which exports them from the plan.
    /// </summary>
    public static bool RunsWrapper(DispatchSettings settings) => settings.Results is not null;

    /// <summary>Whether the Jobs of this plan mount the namespace's shared scripts: a plan that travels with them, read by the sh entrypoint.</summary>
    public static bool UsesSharedScripts(Dictionary<string, string> plan, DispatchSettings settings) =>
        PodEntrypoint.TravelsWithJob(plan) && !RunsWrapper(settings);

    /// <summary>
    /// The prefix of the annotations that carry a plan small enough to travel with its Job
    /// (<see cref="PodEntrypoint.TravelsWithJob"/>): on the pod template the files a pod reads (the downward API writes
    /// each into the plan folder; the script comes from the namespace's shared copy), on the Job itself those only the
    /// controller reads (the dispatched spec, when the pod runs the sh entrypoint rather than the results wrapper), so
    /// that every pod does not carry it too.
    /// </summary>
    public const string PlanAnnotationPrefix = "plan.batchrunner.io/";

    /// <summary>The plan files a Job carries (its pod template's and its own), by file name; null when its plan is in the ConfigMap.</summary>
    public static Dictionary<string, string>? InlinePlanOf(V1Job job)
    {
        var carried = new Dictionary<string, string>(StringComparer.Ordinal);
        // The pod's copy first: a file on both (written by hand) is read as the pods read it.
        foreach (var (key, value) in (job.Spec?.Template?.Metadata?.Annotations ?? EmptyAnnotations).Concat(job.Metadata?.Annotations ?? EmptyAnnotations))
        {
            if (key.StartsWith(PlanAnnotationPrefix, StringComparison.Ordinal))
            {
                carried.TryAdd(key[PlanAnnotationPrefix.Length..], value);
            }
        }

        return carried.Count > 0 ? carried : null;
    }

    private static readonly Dictionary<string, string> EmptyAnnotations = [];

    private static Dictionary<string, string> PlanAnnotations(IEnumerable<KeyValuePair<string, string>> files) =>
        files.ToDictionary(f => PlanAnnotationPrefix + f.Key, f => f.Value, StringComparer.Ordinal);

    private static V1DownwardAPIVolumeFile PlanFileFromAnnotation(string file) => new()
    {
        Path = file,
        FieldRef = new V1ObjectFieldSelector { FieldPath = $"metadata.annotations['{PlanAnnotationPrefix}{file}']" },
    };

    /// <summary>Kueue's label naming the LocalQueue a Job is admitted through.</summary>
    public const string KueueQueueLabel = "kueue.x-k8s.io/queue-name";

    /// <summary>The label saying which rerun of its run a Job runs.</summary>
    public const string RerunLabel = "batchrunner.io/rerun";

    /// <summary>The name of the Job that runs rerun <paramref name="number"/> of a BatchJob's run.</summary>
    public static string RerunJobName(string batchJob, int number) => string.Create(CultureInfo.InvariantCulture, $"{batchJob}-rerun-{number}");

    /// <param name="kueueLocalQueue">A Kueue LocalQueue to admit the Job: it is created suspended, labelled for it, as Kueue documents.</param>
    /// <param name="rerun">
    /// A subset of the run's indexes, with a completion per chosen index; completion <c>i</c> runs the <c>i</c>-th of
    /// <c>BATCHRUNNER_INDEXES</c> (the entrypoint and the wrapper both map it). Number 0 is the run's own Job over its
    /// part of a split run; a rerun's Job is named after its number.
    /// </param>
    /// <param name="plan">The job's plan files (<see cref="PodEntrypoint.PlanFiles"/>, made here when not given).</param>
    /// <param name="name">The Job's name when it is one part of a split run (<see cref="JobParts.NameOf"/>).</param>
    public static V1Job IndexedJob(
        BatchJob job, string uid, ClusterCapabilities cluster, DispatchSettings settings, string? kueueLocalQueue = null, (int Number, string Indexes)? rerun = null,
        Dictionary<string, string>? plan = null, string? name = null)
    {
        plan ??= PodEntrypoint.PlanFiles(job);
        var inlinePlan = PodEntrypoint.TravelsWithJob(plan);
        var spec = job.Spec;
        var collection = settings.Results;
        var store = spec.Results.Uri is { Length: > 0 } own ? own : collection?.Uri;
        var wrapped = RunsWrapper(settings);
        var sharedScripts = UsesSharedScripts(plan, settings);
        // What a pod reads of a plan that travels with it: the wrapper, the spec alone; the sh entrypoint, the run's
        // variables and points (its script is the namespace's shared copy, mounted beside them).
        var podPlan = plan.Where(f => wrapped ? f.Key == PodEntrypoint.SpecKey : f.Key is not (PodEntrypoint.SpecKey or PodEntrypoint.ScriptKey))
            .ToDictionary(StringComparer.Ordinal);
        var planItems = podPlan.Keys.Order(StringComparer.Ordinal).Select(PlanFileFromAnnotation).ToList();
        var runId = RunIdentity.For(job);
        var retries = spec.Retry.Attempts - 1;
        var completions = rerun is { } subset ? IndexRanges.Count(subset.Indexes) : spec.Completions;
        var labels = Labels(job, runId);
        if (rerun is { Number: > 0 } numbered)
        {
            labels[RerunLabel] = numbered.Number.ToString(CultureInfo.InvariantCulture);
        }

        var jobLabels = kueueLocalQueue is null ? labels : new Dictionary<string, string>(labels, StringComparer.Ordinal) { [KueueQueueLabel] = kueueLocalQueue };
        var resources = new Dictionary<string, ResourceQuantity>(StringComparer.Ordinal)
        {
            ["cpu"] = new(spec.Resources.Cpu),
            ["memory"] = new(spec.Resources.Memory),
        };
        var environment = spec.Env.Select(e => new V1EnvVar { Name = e.Name, Value = e.Value }).ToList();
        // A plan in a ConfigMap may have been written by an earlier version for the same run (without the exports), and
        // is shared by every Job of the run: those pods keep the variables in their environment.
        if (wrapped || !inlinePlan)
        {
            environment.Add(new V1EnvVar { Name = WorkloadEnvironment.Job, Value = job.Metadata.Name });
            environment.Add(new V1EnvVar { Name = WorkloadEnvironment.RunId, Value = runId });
            environment.Add(new V1EnvVar { Name = WorkloadEnvironment.OutputDir, Value = PodEntrypoint.OutputPath });
            environment.Add(new V1EnvVar { Name = WorkloadEnvironment.Backend, Value = Backend.Kubernetes.Name });
        }

        if (rerun is { } chosen)
        {
            environment.Add(new V1EnvVar { Name = WorkloadEnvironment.RerunIndexes, Value = chosen.Indexes });
            if (chosen.Number > 0)
            {
                // A rerun runs its indexes on purpose: the results wrapper takes no earlier point for them.
                environment.Add(new V1EnvVar { Name = WorkloadEnvironment.AttemptNumbering, Value = "store" });
            }
        }

        var mounts = new List<V1VolumeMount>
        {
            new() { Name = "plan", MountPath = PodEntrypoint.MountPath, ReadOnlyProperty = true },
            new() { Name = "output", MountPath = PodEntrypoint.OutputPath },
        };
        var volumes = new List<V1Volume>
        {
            !inlinePlan ? new() { Name = "plan", ConfigMap = new V1ConfigMapVolumeSource { Name = BatchJobResource.PlanConfigMapName(job.Metadata.Name) } }
            : !sharedScripts ? new() { Name = "plan", DownwardAPI = new V1DownwardAPIVolumeSource { Items = planItems } }
            : new()
            {
                Name = "plan",
                Projected = new V1ProjectedVolumeSource
                {
                    Sources =
                    [
                        new V1VolumeProjection
                        {
                            ConfigMap = new V1ConfigMapProjection
                            {
                                Name = PodEntrypoint.SharedScriptsName,
                                Items = [new V1KeyToPath { Key = PodEntrypoint.SharedScriptKey(PodEntrypoint.PointsOf(job)), Path = PodEntrypoint.ScriptKey }],
                            },
                        },
                        new V1VolumeProjection { DownwardAPI = new V1DownwardAPIProjection { Items = planItems } },
                    ],
                },
            },
            new() { Name = "output", EmptyDir = new V1EmptyDirVolumeSource() },
        };
        List<V1Container>? initContainers = null;

        // Without a store, the sh entrypoint; with one, the wrapper, which also uploads (the index from JOB_COMPLETION_INDEX either way).
        IList<string> command = ["/bin/sh", $"{PodEntrypoint.MountPath}/{PodEntrypoint.ScriptKey}"];
        if (collection is not null && store is not null)
        {
            command = [ResultsCollection.Executable, "--spec", $"{PodEntrypoint.MountPath}/{PodEntrypoint.SpecKey}", "--store", store, "--"];
            mounts.Add(new V1VolumeMount { Name = "exec", MountPath = ResultsCollection.MountPath, ReadOnlyProperty = true });
            volumes.Add(new V1Volume { Name = "exec", EmptyDir = new V1EmptyDirVolumeSource() });
            // The wrapper keeps the attempt's log in a temporary folder: writable even where a policy makes the
            // container's root filesystem read-only.
            mounts.Add(new V1VolumeMount { Name = "scratch", MountPath = ResultsCollection.ScratchPath });
            volumes.Add(new V1Volume { Name = "scratch", EmptyDir = new V1EmptyDirVolumeSource() });
            initContainers =
            [
                new V1Container
                {
                    Name = ResultsCollection.InitContainer,
                    Image = collection.ExecImage,
                    ImagePullPolicy = ImagePullPolicy,
                    // The wrapper copies itself: the controller image is chiseled (no shell, no cp).
                    Command = [ResultsCollection.ImagePath, "--install", ResultsCollection.Executable],
                    VolumeMounts = [new V1VolumeMount { Name = "exec", MountPath = ResultsCollection.MountPath }],
                    Resources = new V1ResourceRequirements
                    {
                        Requests = new Dictionary<string, ResourceQuantity>(StringComparer.Ordinal) { ["cpu"] = new("100m"), ["memory"] = new("64Mi") },
                        Limits = new Dictionary<string, ResourceQuantity>(StringComparer.Ordinal) { ["cpu"] = new("500m"), ["memory"] = new("128Mi") },
                    },
                },
            ];
            if (!string.IsNullOrEmpty(collection.Region))
            {
                environment.Add(new V1EnvVar { Name = "BatchRunner__Results__Region", Value = collection.Region });
            }

            if (!string.IsNullOrEmpty(collection.EndpointUrl))
            {
                environment.Add(new V1EnvVar { Name = "BatchRunner__Results__EndpointUrl", Value = collection.EndpointUrl });
            }

            if (collection.ForcePathStyle)
            {
                environment.Add(new V1EnvVar { Name = "BatchRunner__Results__ForcePathStyle", Value = "true" });
            }
        }

        return new V1Job
        {
            ApiVersion = "batch/v1",
            Kind = "Job",
            Metadata = new V1ObjectMeta
            {
                Name = name ?? (rerun is { Number: > 0 } named ? RerunJobName(job.Metadata.Name, named.Number) : BatchJobResource.JobName(job.Metadata.Name)),
                NamespaceProperty = job.Metadata.Namespace,
                Labels = jobLabels,
                Annotations = sharedScripts ? PlanAnnotations(plan.Where(f => f.Key == PodEntrypoint.SpecKey)) : null,
                OwnerReferences = [OwnerOf(job.Metadata.Name, uid)],
            },
            Spec = new V1JobSpec
            {
                Suspend = kueueLocalQueue is null ? null : true,
                CompletionMode = "Indexed",
                Completions = completions,
                Parallelism = spec.Parallelism,
                // Retries per index where the server can count them so; otherwise a budget for the whole job.
                BackoffLimitPerIndex = cluster.BackoffLimitPerIndex ? retries : null,
                BackoffLimit = cluster.BackoffLimitPerIndex ? int.MaxValue : Math.Max(retries, 0) * completions,
                ActiveDeadlineSeconds = spec.DeadlineSeconds is { } deadline ? (long)Math.Ceiling(deadline) : null,
                TtlSecondsAfterFinished = settings.TtlSecondsAfterFinished,
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta
                    {
                        Labels = labels,
                        Annotations = inlinePlan ? PlanAnnotations(podPlan) : null,
                    },
                    Spec = new V1PodSpec
                    {
                        RestartPolicy = "Never",
                        // The per-attempt timeout: the kubelet ends a pod that runs longer.
                        ActiveDeadlineSeconds = spec.TimeoutSeconds is { } timeout ? (long)Math.Ceiling(timeout) : null,
                        InitContainers = initContainers,
                        Containers =
                        [
                            new V1Container
                            {
                                Name = WorkloadContainer,
                                Image = spec.Image,
                                ImagePullPolicy = ImagePullPolicy,
                                Command = command,
                                Args = [.. spec.Command, .. spec.Args],
                                Env = environment.Count == 0 ? null : environment,
                                EnvFrom = collection?.CredentialsSecret is { Length: > 0 } secret && store is not null
                                    ? [new V1EnvFromSource { SecretRef = new V1SecretEnvSource { Name = secret } }]
                                    : null,
                                Resources = new V1ResourceRequirements { Requests = resources, Limits = resources },
                                VolumeMounts = mounts,
                            },
                        ],
                        Volumes = volumes,
                    },
                },
            },
        };
    }
}
