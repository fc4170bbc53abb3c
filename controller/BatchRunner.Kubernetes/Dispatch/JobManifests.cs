using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using k8s.Models;

namespace BatchRunner.Kubernetes.Dispatch;

/// <summary>Settings of dispatch that come from the controller's configuration, not from the BatchJob.</summary>
public sealed record DispatchSettings(int TtlSecondsAfterFinished)
{
    public static readonly DispatchSettings Default = new(TtlSecondsAfterFinished: 3600);
}

/// <summary>
/// Builds the objects a BatchJob dispatches to: one Indexed Job and its plan ConfigMap, both owned by the
/// BatchJob (so deleting it collects them), with deterministic names and labels. Pure: no API calls.
/// </summary>
public static class JobManifests
{
    public const string WorkloadContainer = "workload";

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

    public static V1Job IndexedJob(BatchJob job, string uid, ClusterCapabilities cluster, DispatchSettings settings)
    {
        var spec = job.Spec;
        var runId = RunIdentity.For(job);
        var retries = spec.Retry.Attempts - 1;
        var labels = Labels(job, runId);
        var resources = new Dictionary<string, ResourceQuantity>(StringComparer.Ordinal)
        {
            ["cpu"] = new(spec.Resources.Cpu),
            ["memory"] = new(spec.Resources.Memory),
        };
        var environment = spec.Env.Select(e => new V1EnvVar { Name = e.Name, Value = e.Value })
            .Append(new V1EnvVar { Name = WorkloadEnvironment.Job, Value = job.Metadata.Name })
            .Append(new V1EnvVar { Name = WorkloadEnvironment.RunId, Value = runId })
            .Append(new V1EnvVar { Name = WorkloadEnvironment.OutputDir, Value = PodEntrypoint.OutputPath })
            .ToList();

        return new V1Job
        {
            ApiVersion = "batch/v1",
            Kind = "Job",
            Metadata = new V1ObjectMeta
            {
                Name = BatchJobResource.JobName(job.Metadata.Name),
                NamespaceProperty = job.Metadata.Namespace,
                Labels = labels,
                OwnerReferences = [OwnerOf(job.Metadata.Name, uid)],
            },
            Spec = new V1JobSpec
            {
                CompletionMode = "Indexed",
                Completions = spec.Completions,
                Parallelism = spec.Parallelism,
                // Retries per index where the server can count them so; otherwise a budget for the whole job.
                BackoffLimitPerIndex = cluster.BackoffLimitPerIndex ? retries : null,
                BackoffLimit = cluster.BackoffLimitPerIndex ? int.MaxValue : Math.Max(retries, 0) * spec.Completions,
                ActiveDeadlineSeconds = spec.DeadlineSeconds is { } deadline ? (long)Math.Ceiling(deadline) : null,
                TtlSecondsAfterFinished = settings.TtlSecondsAfterFinished,
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = labels },
                    Spec = new V1PodSpec
                    {
                        RestartPolicy = "Never",
                        // The per-attempt timeout: the kubelet ends a pod that runs longer.
                        ActiveDeadlineSeconds = spec.TimeoutSeconds is { } timeout ? (long)Math.Ceiling(timeout) : null,
                        Containers =
                        [
                            new V1Container
                            {
                                Name = WorkloadContainer,
                                Image = spec.Image,
                                Command = ["/bin/sh", $"{PodEntrypoint.MountPath}/{PodEntrypoint.ScriptKey}"],
                                Args = [.. spec.Command, .. spec.Args],
                                Env = environment,
                                Resources = new V1ResourceRequirements { Requests = resources, Limits = resources },
                                VolumeMounts =
                                [
                                    new V1VolumeMount { Name = "plan", MountPath = PodEntrypoint.MountPath, ReadOnlyProperty = true },
                                    new V1VolumeMount { Name = "output", MountPath = PodEntrypoint.OutputPath },
                                ],
                            },
                        ],
                        Volumes =
                        [
                            new V1Volume { Name = "plan", ConfigMap = new V1ConfigMapVolumeSource { Name = BatchJobResource.PlanConfigMapName(job.Metadata.Name) } },
                            new V1Volume { Name = "output", EmptyDir = new V1EmptyDirVolumeSource() },
                        ],
                    },
                },
            },
        };
    }
}
