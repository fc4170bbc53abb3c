using System.Text.Json.Nodes;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Dispatch;
using k8s.Models;

namespace BatchRunner.Kubernetes.Tests;

public sealed class JobManifestsTests
{
    private const string SweepOverrides = """
        {
          "env": [{"name": "LOG_LEVEL", "value": "debug"}],
          "args": ["--out", "results dir"],
          "resources": {"cpu": "500m", "memory": "512Mi"},
          "parallelism": 4,
          "sweep": {"grid": {"servers": [1, 2, 3], "rate": [0.5, 0.9]}, "repeats": 2},
          "retry": {"attempts": 3},
          "timeoutSeconds": 90.5,
          "deadlineSeconds": 1800.2
        }
        """;

    private static readonly BatchJob Sweep = Specs.Job(SweepOverrides);

    private static V1Job Build(BatchJob job, ClusterCapabilities? cluster = null) =>
        JobManifests.IndexedJob(job, Specs.Uid, cluster ?? ClusterCapabilities.Current, DispatchSettings.Default);

    [Fact]
    public void The_job_is_indexed_with_the_completions_and_parallelism_of_the_spec()
    {
        var job = Build(Sweep);

        Assert.Equal("batch/v1", job.ApiVersion);
        Assert.Equal("Job", job.Kind);
        Assert.Equal("Indexed", job.Spec.CompletionMode);
        Assert.Equal(12, job.Spec.Completions);
        Assert.Equal(4, job.Spec.Parallelism);
        Assert.Equal("Never", job.Spec.Template.Spec.RestartPolicy);
        Assert.Equal(DispatchSettings.Default.TtlSecondsAfterFinished, job.Spec.TtlSecondsAfterFinished);
    }

    [Fact]
    public void The_job_and_plan_are_named_for_the_batchjob_and_owned_by_it()
    {
        var job = Build(Sweep);
        var plan = JobManifests.PlanConfigMap(Sweep, Specs.Uid, PodEntrypoint.PlanFiles(Sweep));

        Assert.Equal(Specs.Name, job.Metadata.Name);
        Assert.Equal(Specs.Name + "-plan", plan.Metadata.Name);
        Assert.All(new[] { job.Metadata, plan.Metadata }, metadata =>
        {
            Assert.Equal(Specs.Namespace, metadata.NamespaceProperty);
            var owner = Assert.Single(metadata.OwnerReferences);
            Assert.Equal(("batchrunner.io/v1alpha1", "BatchJob", Specs.Name, Specs.Uid), (owner.ApiVersion, owner.Kind, owner.Name, owner.Uid));
            Assert.True(owner.Controller);
            Assert.True(owner.BlockOwnerDeletion);
        });
        Assert.Equal(Without(PodEntrypoint.PlanFiles(Sweep), PodEntrypoint.ScriptKey), JobManifests.InlinePlanOf(job));
    }

    private static Dictionary<string, string> Without(Dictionary<string, string> files, params string[] keys) =>
        files.Where(f => !keys.Contains(f.Key)).ToDictionary(StringComparer.Ordinal);

    [Fact]
    public void A_small_plan_travels_in_the_pod_template_the_downward_api_writing_each_file_the_entrypoint_reads_beside_the_namespace_s_script()
    {
        var job = Build(Sweep);
        var files = PodEntrypoint.PlanFiles(Sweep);

        var volume = job.Spec.Template.Spec.Volumes.Single(v => v.Name == "plan");
        Assert.Null(volume.ConfigMap);
        var script = Assert.Single(volume.Projected.Sources, s => s.ConfigMap is not null).ConfigMap;
        Assert.Equal(PodEntrypoint.SharedScriptsName, script.Name);
        var item = Assert.Single(script.Items);
        Assert.Equal(PodEntrypoint.ScriptKey, item.Path);
        Assert.Equal(files[PodEntrypoint.ScriptKey], JobManifests.SharedScriptsConfigMap(Specs.Namespace).Data[item.Key]);

        var plan = Assert.Single(volume.Projected.Sources, s => s.DownwardAPI is not null).DownwardAPI.Items;
        Assert.Equal(files.Keys.Where(k => k is not (PodEntrypoint.SpecKey or PodEntrypoint.ScriptKey)).Order(StringComparer.Ordinal), plan.Select(i => i.Path));
        Assert.All(plan, item =>
            Assert.Equal(files[item.Path], job.Spec.Template.Metadata.Annotations[item.FieldRef.FieldPath["metadata.annotations['".Length..^2]]));
        Assert.DoesNotContain(JobManifests.PlanAnnotationPrefix + PodEntrypoint.ScriptKey, job.Spec.Template.Metadata.Annotations.Keys);
        Assert.True(files.Sum(f => f.Value.Length) <= PodEntrypoint.MaxInlinePlanBytes);
    }

    [Theory]
    [InlineData("{}", PodEntrypoint.Points.None)]
    [InlineData("""{"sweep": {"grid": {"rate": [1, 2]}}}""", PodEntrypoint.Points.Grid)]
    [InlineData("""{"sweep": {"list": [{"rate": 1}]}}""", PodEntrypoint.Points.List)]
    public void Each_kind_of_sweep_mounts_its_own_script_from_the_namespace_s_shared_copy(string spec, PodEntrypoint.Points points)
    {
        var job = Build(Specs.Job(spec));

        var script = job.Spec.Template.Spec.Volumes.Single(v => v.Name == "plan").Projected.Sources.Single(s => s.ConfigMap is not null).ConfigMap;
        Assert.Equal(PodEntrypoint.Script(points), PodEntrypoint.SharedScripts()[script.Items.Single().Key]);
    }

    [Fact]
    public void The_shared_scripts_are_named_after_their_content_and_labelled_as_the_controller_s()
    {
        var map = JobManifests.SharedScriptsConfigMap("team-b");

        Assert.Equal(("team-b", PodEntrypoint.SharedScriptsName), (map.Metadata.NamespaceProperty, map.Metadata.Name));
        Assert.Matches("^batchrunner-entrypoint-[0-9a-f]{10}$", map.Metadata.Name);
        Assert.Equal(BatchJobResource.ManagedByValue, map.Metadata.Labels[BatchJobResource.ManagedByLabel]);
        Assert.Null(map.Metadata.OwnerReferences);
        Assert.Equal(Enum.GetValues<PodEntrypoint.Points>().Select(PodEntrypoint.Script).Order(StringComparer.Ordinal), map.Data.Values.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_dispatched_spec_stays_on_the_job_when_the_pods_run_the_sh_entrypoint_and_goes_to_the_pods_when_they_run_the_wrapper()
    {
        var files = PodEntrypoint.PlanFiles(Sweep);
        var plain = Build(Sweep);
        var wrapped = JobManifests.IndexedJob(Sweep, Specs.Uid, ClusterCapabilities.Current, WithStore);

        Assert.Equal(files[PodEntrypoint.SpecKey], plain.Metadata.Annotations[JobManifests.PlanAnnotationPrefix + PodEntrypoint.SpecKey]);
        Assert.DoesNotContain(JobManifests.PlanAnnotationPrefix + PodEntrypoint.SpecKey, plain.Spec.Template.Metadata.Annotations.Keys);
        Assert.Null(wrapped.Metadata.Annotations);
        Assert.Equal(files[PodEntrypoint.SpecKey], wrapped.Spec.Template.Metadata.Annotations[JobManifests.PlanAnnotationPrefix + PodEntrypoint.SpecKey]);
        // The wrapper reads the spec alone: its pods carry nothing else of the plan.
        Assert.Equal([PodEntrypoint.SpecKey], wrapped.Spec.Template.Spec.Volumes.Single(v => v.Name == "plan").DownwardAPI.Items.Select(i => i.Path));
        Assert.Equal([JobManifests.PlanAnnotationPrefix + PodEntrypoint.SpecKey], wrapped.Spec.Template.Metadata.Annotations.Keys);
        Assert.Equal(Without(files, PodEntrypoint.ScriptKey), JobManifests.InlinePlanOf(plain));
        Assert.Equal(new Dictionary<string, string> { [PodEntrypoint.SpecKey] = files[PodEntrypoint.SpecKey] }, JobManifests.InlinePlanOf(wrapped));
    }

    [Fact]
    public void A_plan_file_annotated_on_both_the_job_and_its_pods_is_read_as_the_pods_read_it()
    {
        var job = Build(Sweep);
        job.Metadata.Annotations[JobManifests.PlanAnnotationPrefix + PodEntrypoint.PlanKey] = "written by hand";

        Assert.Equal(Without(PodEntrypoint.PlanFiles(Sweep), PodEntrypoint.ScriptKey), JobManifests.InlinePlanOf(job));
    }

    private static DispatchSettings WithStore => DispatchSettings.Default with { Results = new ResultsCollection("s3://bucket/prefix", "batchrunner/controller:test") };

    [Fact]
    public void A_plan_larger_than_travels_in_a_job_is_mounted_from_the_configmap()
    {
        var list = Specs.Job("""{"sweep": {"list": [""" + string.Join(", ", Enumerable.Range(0, 1000).Select(i => $$"""{"label": "point-{{i:D5}}"}""")) + "]}}");

        var job = Build(list);

        Assert.False(PodEntrypoint.TravelsWithJob(PodEntrypoint.PlanFiles(list)));
        Assert.Equal(Specs.Name + "-plan", job.Spec.Template.Spec.Volumes.Single(v => v.Name == "plan").ConfigMap.Name);
        Assert.Null(job.Spec.Template.Metadata.Annotations);
        Assert.Null(JobManifests.InlinePlanOf(job));
        Assert.Contains(("BATCHRUNNER_RUN_ID", RunIdentity.For(list)), job.Spec.Template.Spec.Containers[0].Env.Select(e => (e.Name, e.Value)));
    }

    [Fact]
    public void The_job_its_pods_and_the_plan_carry_the_managed_by_batchjob_and_run_labels()
    {
        var job = Build(Sweep);
        var plan = JobManifests.PlanConfigMap(Sweep, Specs.Uid, PodEntrypoint.PlanFiles(Sweep));
        var expected = new Dictionary<string, string>
        {
            ["app.kubernetes.io/managed-by"] = "batchrunner",
            ["batchrunner.io/batchjob"] = Specs.Name,
            ["batchrunner.io/run"] = RunIdentity.For(Sweep),
        };

        Assert.Equal(expected, job.Metadata.Labels);
        Assert.Equal(expected, job.Spec.Template.Metadata.Labels);
        Assert.Equal(expected, plan.Metadata.Labels);
        Assert.StartsWith("r", RunIdentity.For(Sweep), StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_batchjob_always_gives_the_same_manifests()
    {
        var first = k8s.KubernetesJson.Serialize(Build(Sweep));
        var again = k8s.KubernetesJson.Serialize(Build(Specs.Job(SweepOverrides)));

        Assert.Equal(first, again);
        Assert.Equal(PodEntrypoint.PlanFiles(Sweep), PodEntrypoint.PlanFiles(Specs.Job(SweepOverrides)));
    }

    [Fact]
    public void A_current_cluster_retries_per_index_with_no_job_wide_limit()
    {
        var job = Build(Sweep, new ClusterCapabilities(1, 29));

        Assert.Equal(2, job.Spec.BackoffLimitPerIndex);
        Assert.Equal(int.MaxValue, job.Spec.BackoffLimit);
    }

    [Fact]
    public void A_cluster_without_per_index_limits_gets_a_job_wide_budget_of_retries_times_completions()
    {
        var job = Build(Sweep, new ClusterCapabilities(1, 21));

        Assert.Null(job.Spec.BackoffLimitPerIndex);
        Assert.Equal(2 * 12, job.Spec.BackoffLimit);
    }

    [Fact]
    public void One_attempt_means_no_retries_on_either_kind_of_cluster()
    {
        var once = Specs.Job("""{"completions": 3}""");

        Assert.Equal(0, Build(once, new ClusterCapabilities(1, 30)).Spec.BackoffLimitPerIndex);
        Assert.Equal(0, Build(once, new ClusterCapabilities(1, 21)).Spec.BackoffLimit);
    }

    [Fact]
    public void The_deadline_bounds_the_job_and_the_timeout_bounds_each_pod_rounded_up()
    {
        var job = Build(Sweep);

        Assert.Equal(1801, job.Spec.ActiveDeadlineSeconds);
        Assert.Equal(91, job.Spec.Template.Spec.ActiveDeadlineSeconds);
    }

    [Fact]
    public void Without_a_deadline_or_timeout_neither_is_set()
    {
        var job = Build(Specs.Job());

        Assert.Null(job.Spec.ActiveDeadlineSeconds);
        Assert.Null(job.Spec.Template.Spec.ActiveDeadlineSeconds);
    }

    [Fact]
    public void The_container_runs_the_entrypoint_with_the_command_and_args_as_arguments()
    {
        var container = Assert.Single(Build(Sweep).Spec.Template.Spec.Containers);

        Assert.Equal("workload", container.Name);
        Assert.Equal("registry.example/sim:1", container.Image);
        Assert.Equal(["/bin/sh", "/etc/batchrunner/entrypoint.sh"], container.Command);
        Assert.Equal(["python", "sim.py", "--out", "results dir"], container.Args);
    }

    [Fact]
    public void The_container_requests_and_is_limited_to_the_spec_resources()
    {
        var resources = Build(Sweep).Spec.Template.Spec.Containers[0].Resources;

        Assert.Equal("500m", resources.Requests["cpu"].ToString());
        Assert.Equal("512Mi", resources.Requests["memory"].ToString());
        Assert.Equal(resources.Requests.ToDictionary(r => r.Key, r => r.Value.ToString()), resources.Limits.ToDictionary(r => r.Key, r => r.Value.ToString()));
    }

    [Fact]
    public void The_container_env_is_the_spec_env_and_the_plan_exports_the_job_run_and_backend_variables()
    {
        var env = Build(Sweep).Spec.Template.Spec.Containers[0].Env.Select(e => (e.Name, e.Value));

        Assert.Equal([("LOG_LEVEL", "debug")], env);
        Assert.Contains($"export BATCHRUNNER_JOB='{Specs.Name}' BATCHRUNNER_RUN_ID='{RunIdentity.For(Sweep)}' BATCHRUNNER_BACKEND=kubernetes\n",
            PodEntrypoint.PlanFiles(Sweep)[PodEntrypoint.PlanKey], StringComparison.Ordinal);
    }

    [Fact]
    public void The_wrapper_gets_the_spec_env_then_the_job_run_output_and_backend_variables_in_its_environment()
    {
        var env = JobManifests.IndexedJob(Sweep, Specs.Uid, ClusterCapabilities.Current, WithStore).Spec.Template.Spec.Containers[0].Env.Select(e => (e.Name, e.Value));

        Assert.Equal(
            [("LOG_LEVEL", "debug"), ("BATCHRUNNER_JOB", Specs.Name), ("BATCHRUNNER_RUN_ID", RunIdentity.For(Sweep)), ("BATCHRUNNER_OUTPUT_DIR", "/batchrunner/output"),
                ("BATCHRUNNER_BACKEND", "kubernetes")],
            env);
    }

    [Fact]
    public void A_part_of_a_split_run_is_the_runs_own_job_with_a_completion_per_index_of_the_part()
    {
        var job = JobManifests.IndexedJob(Sweep, Specs.Uid, ClusterCapabilities.Current, DispatchSettings.Default, rerun: (0, "0-2"));

        Assert.Equal(BatchJobResource.JobName(Specs.Name), job.Metadata.Name);
        Assert.False(job.Metadata.Labels.ContainsKey(JobManifests.RerunLabel));
        Assert.Equal(3, job.Spec.Completions);
        Assert.Contains(("BATCHRUNNER_INDEXES", "0-2"), job.Spec.Template.Spec.Containers[0].Env.Select(e => (e.Name, e.Value)));
        Assert.DoesNotContain(job.Spec.Template.Spec.Containers[0].Env, e => e.Name == "BATCHRUNNER_ATTEMPT_NUMBERING");
        var rerun = JobManifests.IndexedJob(Sweep, Specs.Uid, ClusterCapabilities.Current, DispatchSettings.Default, rerun: (1, "2"));
        Assert.Contains(("BATCHRUNNER_ATTEMPT_NUMBERING", "store"), rerun.Spec.Template.Spec.Containers[0].Env.Select(e => (e.Name, e.Value)));
    }

    [Fact]
    public void The_plan_is_mounted_read_only_and_the_output_is_an_empty_dir()
    {
        var pod = Build(Sweep).Spec.Template.Spec;
        var mounts = pod.Containers[0].VolumeMounts.ToDictionary(m => m.Name);

        Assert.Equal("/etc/batchrunner", mounts["plan"].MountPath);
        Assert.True(mounts["plan"].ReadOnlyProperty);
        Assert.Equal("/batchrunner/output", mounts["output"].MountPath);
        Assert.NotNull(pod.Volumes.Single(v => v.Name == "output").EmptyDir);
        Assert.Equal(2, pod.Volumes.Count);
    }

    [Fact]
    public void The_plan_holds_the_script_the_plan_the_axes_and_the_dispatched_spec()
    {
        var files = PodEntrypoint.PlanFiles(Sweep);

        Assert.Equal(["axis-0", "axis-1", "entrypoint.sh", "plan.env", "spec.json"], files.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(PodEntrypoint.Script(PodEntrypoint.Points.Grid), files["entrypoint.sh"]);
        Assert.Equal(RunIdentity.SpecJson(Sweep), files["spec.json"]);
        Assert.Contains("BR_REPEATS=2\n", files["plan.env"], StringComparison.Ordinal);
    }

    [Fact]
    public void A_100000_index_grid_plan_stays_small()
    {
        var job = PodEntrypointTests.HundredThousandIndexGrid();

        var bytes = PodEntrypoint.SizeOf(PodEntrypoint.PlanFiles(job));

        Assert.Equal(100_000, job.Spec.Completions);
        Assert.InRange(bytes, 1_000, 10_000);
    }

    [Fact]
    public void A_long_list_sweep_is_measured_as_too_large_for_a_configmap()
    {
        var job = LongList(5_000);

        var bytes = PodEntrypoint.SizeOf(PodEntrypoint.PlanFiles(job));

        Assert.True(bytes > PodEntrypoint.MaxPlanBytes, $"{bytes} bytes");
    }

    [Fact]
    public void Plan_size_counts_keys_and_values_in_utf8_bytes()
    {
        Assert.Equal(3 + 2 + 1 + 3, PodEntrypoint.SizeOf(new() { ["abc"] = "é", ["k"] = "東" }));
    }

    /// <summary>A list sweep whose points are written one by one: its plan grows with the number of indexes.</summary>
    internal static BatchJob LongList(int points) => Specs.Job(LongListSpec(points));

    internal static JsonObject LongListSpec(int points)
    {
        var spec = Specs.Spec();
        spec["sweep"] = new JsonObject
        {
            ["list"] = new JsonArray(Enumerable.Range(0, points)
                .Select(i => (JsonNode?)new JsonObject { ["x"] = i, ["label"] = $"point number {i:D6} " + new string('~', 100) })
                .ToArray()),
        };
        return spec;
    }
}
