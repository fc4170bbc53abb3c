using k8s;
using k8s.Models;
using System.Net;
using BatchRunner.Kubernetes;
using BatchRunner.Kubernetes.Client;
using BatchRunner.Kubernetes.Testing;
using Xunit;
using Xunit.Abstractions;
using static BatchRunner.Operator.Tests.Cluster;

namespace BatchRunner.Operator.Tests;

/// <summary>The operator end to end, as a user meets it: kubectl in, Jobs, status, conditions and events out.</summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class OperatorTests(OperatorFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(60);
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<ControllerProcess> _controllers = [];
    private string _ns = "";

    public async Task InitializeAsync()
    {
        _ns = "t-" + Guid.NewGuid().ToString("N")[..10];
        await fixture.ControlPlane.CreateNamespaceAsync(_ns);
    }

    public async Task DisposeAsync()
    {
        foreach (var controller in _controllers)
        {
            output.WriteLine($"--- controller {controller.Identity} log ---\n{controller.Log}");
            await controller.DisposeAsync();
        }

        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_sweep_applied_with_kubectl_runs_to_completion_with_status_conditions_events_and_metrics()
    {
        Simulate(new PodSimulatorOptions { Namespace = _ns });
        var controller = StartController("replica-a");
        // Another controller version's shared scripts, which no Job mounts, and a ConfigMap of that name not the controller's.
        foreach (var (name, labels) in new[] { ("batchrunner-entrypoint-0123456789", new Dictionary<string, string> { [BatchJobResource.ManagedByLabel] = BatchJobResource.ManagedByValue }), ("batchrunner-entrypoint-fedcba9876", null) })
        {
            await fixture.Admin.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = name, Labels = labels } }, _ns);
        }

        // No spec.backend: applied to a cluster, a BatchJob runs on Kubernetes (the CRD's default).
        await fixture.ApplyAsync(BatchJobYaml(_ns, "sweep"));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "sweep")) == "Succeeded", Converge, "the BatchJob succeeds");

        var batchJob = await BatchJobAsync(fixture.Admin, _ns, "sweep");
        Assert.Equal("kubernetes", batchJob!.Value.GetProperty("spec").GetProperty("backend").GetString());
        Assert.Equal((6, 0, 6), (Status(batchJob, "succeeded")!.Value.GetInt32(), Status(batchJob, "failed")!.Value.GetInt32(), Status(batchJob, "total")!.Value.GetInt32()));
        Assert.Equal(batchJob.Value.GetProperty("metadata").GetProperty("generation").GetInt64(), Status(batchJob, "observedGeneration")!.Value.GetInt64());
        Assert.Matches("^r[0-9a-f]{11}$", Status(batchJob, "runId")!.Value.GetString());
        foreach (var (type, status) in new[] { ("Valid", "True"), ("Dispatched", "True"), ("Complete", "True") })
        {
            Assert.Equal(status, Condition(batchJob, type)?.GetProperty("status").GetString());
        }

        // 1.20 drops completionMode: the BatchJob says what that costs.
        Assert.Equal("IndexedJobsUnsupported", Condition(batchJob, "Degraded")?.GetProperty("reason").GetString());

        var job = Assert.Single(await JobsAsync(fixture.Admin, _ns, "sweep"));
        Assert.Equal((6, 2), (job.Spec.Completions, job.Spec.Parallelism));
        var owner = Assert.Single(job.Metadata.OwnerReferences);
        Assert.Equal(("BatchJob", true, batchJob.Value.GetProperty("metadata").GetProperty("uid").GetString()), (owner.Kind, owner.Controller == true, owner.Uid));
        // The plan travels in the Job: what its pods read in their annotations (written as files by the downward API), the
        // dispatched spec, which only the controller reads, on the Job alone, and the script from the namespace's shared
        // copy, projected beside them (the API server took the pods, so the projection is valid). No plan ConfigMap,
        // no finalizer.
        Assert.StartsWith("BR_COMPLETIONS=6\n", job.Spec.Template.Metadata.Annotations["plan.batchrunner.io/plan.env"], StringComparison.Ordinal);
        Assert.DoesNotContain("plan.batchrunner.io/entrypoint.sh", job.Spec.Template.Metadata.Annotations.Keys);
        var plan = job.Spec.Template.Spec.Volumes.Single(v => v.Name == "plan").Projected.Sources;
        Assert.DoesNotContain(plan.Single(s => s.DownwardAPI is not null).DownwardAPI.Items, i => i.Path is "spec.json" or "entrypoint.sh");
        var scripts = await fixture.Admin.CoreV1.ReadNamespacedConfigMapAsync(plan.Single(s => s.ConfigMap is not null).ConfigMap.Name, _ns);
        Assert.StartsWith("#!/bin/sh", scripts.Data[plan.Single(s => s.ConfigMap is not null).ConfigMap.Items.Single().Key], StringComparison.Ordinal);
        Assert.NotEmpty((await fixture.Admin.CoreV1.ListNamespacedPodAsync(_ns, labelSelector: "batchrunner.io/batchjob=sweep")).Items);
        Assert.StartsWith("{", job.Metadata.Annotations["plan.batchrunner.io/spec.json"], StringComparison.Ordinal);
        Assert.Empty((await fixture.Admin.CoreV1.ListNamespacedConfigMapAsync(_ns, labelSelector: "batchrunner.io/batchjob=sweep")).Items);
        Assert.False(batchJob.Value.GetProperty("metadata").TryGetProperty("finalizers", out _));
        // Making its own copy, it deleted the other version's (the ClusterRole lets it list ConfigMaps) and nothing else.
        Assert.Equal(new[] { "batchrunner-entrypoint-fedcba9876", scripts.Metadata.Name }.Order(StringComparer.Ordinal),
            (await fixture.Admin.CoreV1.ListNamespacedConfigMapAsync(_ns)).Items.Select(m => m.Metadata.Name).Where(n => n.StartsWith("batchrunner-entrypoint-", StringComparison.Ordinal)).Order(StringComparer.Ordinal));

        await HasEventAsync("sweep", "Dispatched");
        await HasEventAsync("sweep", "Succeeded");

        // Its own status writes do not wake the controller; anyone else's does: a wiped status is derived again.
        await fixture.KubectlAsync("patch", "bj", "sweep", "-n", _ns, "--type=merge", "--subresource=status", "-p", "{\"status\":null}");
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "sweep")) == "Succeeded", Converge, "the wiped status is derived again");

        var table = await fixture.KubectlAsync("get", "bj", "-n", _ns);
        Assert.Matches(@"sweep\s+Succeeded\s+6\s+0\s+6\s+kubernetes", table);
        Assert.Equal(HttpStatusCode.OK, (await controller.GetAsync("/healthz")).Status);
        Assert.Equal(HttpStatusCode.OK, (await controller.GetAsync("/readyz")).Status);
        var metrics = (await controller.GetAsync("/metrics")).Body;
        Assert.Matches(@"batchrunner_reconciles_total\{result=""success""\} [1-9]", metrics);
        Assert.Equal(1, await controller.MetricAsync("batchrunner_leader"));
        // The gauge counts the controller's cache (every namespace, so other tests' BatchJobs too), which sees the
        // final status a moment after the API does.
        await Eventually.TrueAsync(
            async () => System.Text.RegularExpressions.Regex.IsMatch((await controller.GetAsync("/metrics")).Body, @"batchrunner_batchjobs\{phase=""Succeeded""\} [1-9]"),
            TimeSpan.FromSeconds(10), "the phase gauge counts the succeeded BatchJob");
    }

    [Fact]
    public async Task In_a_burst_each_batchjob_gets_one_status_write_even_when_the_job_controller_counts_its_job_seconds_later()
    {
        // A hundred at once: the Job controller counts about five Jobs a second (its client's default rate), so the
        // last are counted well past the five seconds a lone Job is given. Every status change is a MODIFIED event.
        const int count = 100;
        var writes = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var listWatch = new CustomObjectListWatch<BatchJobObject, BatchJobObjectList>(fixture.Admin, BatchJobResource.Plural);
        var (_, version) = await listWatch.ListAsync(CancellationToken.None);
        using var stop = new CancellationTokenSource();
        var watching = Task.Run(async () =>
        {
            try
            {
                await foreach (var (type, batchJob) in listWatch.WatchAsync(version, stop.Token))
                {
                    if (type == k8s.WatchEventType.Modified && batchJob.Metadata.NamespaceProperty == _ns)
                    {
                        lock (writes)
                        {
                            (writes.TryGetValue(batchJob.Metadata.Name, out var seen) ? seen : writes[batchJob.Metadata.Name] = []).Add(batchJob.Status?.GetRawText() ?? "null");
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // Done watching.
            }
        });
        StartController("replica-a");

        await fixture.ApplyAsync(string.Join("\n---\n", Enumerable.Range(0, count).Select(i => $$"""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: burst-{{i:D3}}, namespace: {{_ns}}}
            spec: {image: busybox:1.36, command: [/bin/true], completions: 1}
            """)));
        await Eventually.TrueAsync(
            async () => (await fixture.Admin.BatchV1.ListNamespacedJobAsync(_ns)).Items.Count(j => j.Status?.StartTime is not null) == count,
            TimeSpan.FromMinutes(2), "the Job controller counts every Job");
        await Eventually.TrueAsync(
            async () => (await fixture.Admin.CustomObjects.ListNamespacedCustomObjectAsync("batchrunner.io", "v1alpha1", _ns, "batchjobs") is System.Text.Json.JsonElement list
                ? list.GetProperty("items").EnumerateArray().Count(b => b.TryGetProperty("status", out var status) && status.TryGetProperty("phase", out _))
                : 0) == count,
            Converge, "every BatchJob has a status");
        await Task.Delay(TimeSpan.FromSeconds(5));
        await stop.CancelAsync();
        await watching;

        lock (writes)
        {
            // One write each; another only where the Job itself changed after (1.20's Job controller now and then
            // stamps a Job's startTime twice, a second apart, and the status follows the Job).
            Assert.Equal(count, writes.Count);
            Assert.All(writes, w => Assert.True(
                w.Value.Select(WithoutStartTime).Distinct(StringComparer.Ordinal).Count() == 1,
                $"{w.Key} was written {w.Value.Count} times: {string.Join("\nthen ", w.Value)}"));
        }
    }

    private static string WithoutStartTime(string status)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(status)!.AsObject();
        node.Remove("startTime");
        return node.ToJsonString();
    }

    [Fact]
    public async Task A_finished_batchjobs_run_is_compacted_in_its_results_store_by_the_controller()
    {
        var store = Directory.CreateTempSubdirectory("operator-store-").FullName;
        _owned.Add(new Deleting(store));
        var pods = -1;
        // Each simulated pod leaves in the store what the results wrapper would: a ledger row and one result line.
        Simulate(new PodSimulatorOptions
        {
            Namespace = _ns,
            Outcome = pod =>
            {
                var run = pod.Metadata.Labels["batchrunner.io/run"];
                var index = Interlocked.Increment(ref pods);
                var attempt = Path.Combine(store, "batchjob=sweep", $"run={run}", $"index={index}", "attempt=1");
                Directory.CreateDirectory(Path.Combine(attempt, "output"));
                File.WriteAllText(Path.Combine(attempt, "output", "rows.jsonl"), $"{{\"mean_wait\": {index}.5}}\n");
                File.WriteAllText(Path.Combine(attempt, "ledger.json"), $$"""
                    {"batchjob": "sweep", "namespace": "{{_ns}}", "run": "{{run}}", "index": {{index}}, "attempt": 1, "repeat": 0, "seed": {{index}},
                     "params": {"rate": 0.5, "servers": {{index}}}, "status": "succeeded", "exit_code": 0, "started_at": "2026-11-22T10:00:00.000000Z",
                     "finished_at": "2026-11-22T10:00:01.000000Z", "duration_seconds": 1.0, "backend": "kubernetes", "output_files": 1, "output_bytes": 18,
                     "output_rows": 1, "output_malformed": 0}
                    """);
                return PodOutcome.Succeed;
            },
        });
        StartController("replica-a", "--BatchRunner:Results:Uri=" + store);

        await fixture.ApplyAsync(BatchJobYaml(_ns, "sweep"));
        await Eventually.TrueAsync(
            async () => Condition(await BatchJobAsync(fixture.Admin, _ns, "sweep"), "ResultsCompacted")?.GetProperty("status").GetString() == "True",
            Converge, "the BatchJob's run is compacted");

        var batchJob = await BatchJobAsync(fixture.Admin, _ns, "sweep");
        Assert.Equal("Succeeded", Phase(batchJob));
        var runId = Status(batchJob, "runId")!.Value.GetString()!;
        var condition = Condition(batchJob, "ResultsCompacted")!.Value;
        Assert.Equal("Compacted", condition.GetProperty("reason").GetString());
        Assert.StartsWith($"run {runId}: 6 attempt(s) and 6 result row(s) compacted", condition.GetProperty("message").GetString(), StringComparison.Ordinal);
        var run = Path.Combine(store, "batchjob=sweep", $"run={runId}");
        using var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(run, "_run.json")));
        Assert.Equal(6, manifest.RootElement.GetProperty("compaction").GetProperty("results").GetProperty("rows").GetInt64());
        Assert.True(File.Exists(Path.Combine(run, "compacted", "results", "part-00000.parquet")));
        await HasEventAsync("sweep", "Compacted");
    }

    /// <summary>An event is recorded after the status it reports, so a test that saw the status waits for the event.</summary>
    private Task HasEventAsync(string batchJob, string reason, string type = "Normal") => Eventually.TrueAsync(
        async () => (await EventsAsync(fixture.Admin, _ns, batchJob)).Any(e => e.Reason == reason && e.Type == type),
        Converge, $"a {type} event {reason} on {batchJob}");

    private sealed class Deleting(string folder) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            Directory.Delete(folder, recursive: true);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task A_sweep_larger_than_a_job_holds_runs_as_several_jobs_and_one_the_quota_refuses_waits_visibly_until_it_has_room()
    {
        Simulate(new PodSimulatorOptions { Namespace = _ns });
        // Room for two Jobs: the third part is refused by the API server's quota admission.
        await fixture.KubectlAsync("create", "quota", "two-jobs", "-n", _ns, "--hard=count/jobs.batch=2");
        await Eventually.TrueAsync(
            async () => (await fixture.Admin.CoreV1.ReadNamespacedResourceQuotaAsync("two-jobs", _ns)).Status?.Hard is { Count: > 0 },
            Converge, "the quota controller computed the quota");
        StartController("replica-a", "--BatchRunner:Kubernetes:MaxCompletionsPerJob=2");

        await fixture.ApplyAsync(BatchJobYaml(_ns, "split"));
        await Eventually.TrueAsync(
            async () => Condition(await BatchJobAsync(fixture.Admin, _ns, "split"), "Dispatched")?.GetProperty("reason").GetString() == "JobRefused",
            Converge, "the refused part is on the status");
        var refused = Condition(await BatchJobAsync(fixture.Admin, _ns, "split"), "Dispatched")!.Value;
        Assert.Equal("False", refused.GetProperty("status").GetString());
        Assert.Contains("Job split-part-2 (part 3 of 3)", refused.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("exceeded quota", refused.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, (await JobsAsync(fixture.Admin, _ns, "split")).Count);

        await fixture.KubectlAsync("delete", "quota", "two-jobs", "-n", _ns);
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "split")) == "Succeeded", Converge, "the BatchJob succeeds");

        var batchJob = await BatchJobAsync(fixture.Admin, _ns, "split");
        Assert.Equal((6, 0, 6), (Status(batchJob, "succeeded")!.Value.GetInt32(), Status(batchJob, "failed")!.Value.GetInt32(), Status(batchJob, "total")!.Value.GetInt32()));
        Assert.Equal("True", Condition(batchJob, "Dispatched")?.GetProperty("status").GetString());
        var jobs = (await JobsAsync(fixture.Admin, _ns, "split")).OrderBy(j => j.Metadata.Name, StringComparer.Ordinal).ToList();
        Assert.Equal(
            [("split", 2, "0-1"), ("split-part-1", 2, "2-3"), ("split-part-2", 2, "4-5")],
            jobs.Select(j => (j.Metadata.Name, j.Spec.Completions ?? 0, j.Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == "BATCHRUNNER_INDEXES").Value)));
        Assert.All(jobs, j => Assert.Equal(batchJob!.Value.GetProperty("metadata").GetProperty("uid").GetString(), Assert.Single(j.Metadata.OwnerReferences).Uid));
        // The run's parallelism spanned its Jobs: never more than 2 pods of it at once (the simulator's pods finish at once,
        // so each Job's own count shows what it was given), and the later parts got their share as the first drained.
        Assert.All(jobs, j => Assert.InRange(j.Spec.Parallelism ?? 0, 0, 2));
        Assert.Contains(jobs.Skip(1), j => j.Spec.Parallelism > 0);

        // Deleting the BatchJob collects every part through its owner reference.
        await fixture.KubectlAsync("delete", "bj", "split", "-n", _ns, "--wait=false");
        await Eventually.TrueAsync(async () => (await JobsAsync(fixture.Admin, _ns, "split")).Count == 0, Converge, "every part is gone with the BatchJob");
    }

    [Fact]
    public async Task Indexes_failing_beyond_their_retries_fail_the_batchjob_with_the_jobs_reason()
    {
        Simulate(new PodSimulatorOptions { Namespace = _ns, Outcome = _ => PodOutcome.Fail(3) });
        StartController("replica-a");

        await fixture.ApplyAsync(BatchJobYaml(_ns, "failing", "retry: {attempts: 1}", sweep: "{grid: {rate: [0.5, 0.9]}}"));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "failing")) == "Failed", Converge, "the BatchJob fails");

        var batchJob = await BatchJobAsync(fixture.Admin, _ns, "failing");
        var failed = Condition(batchJob, "Failed");
        Assert.Equal(("True", "BackoffLimitExceeded"), (failed?.GetProperty("status").GetString(), failed?.GetProperty("reason").GetString()));
        Assert.True(Status(batchJob, "failed")!.Value.GetInt32() >= 1);
        await HasEventAsync("failing", "Failed", "Warning");
    }

    [Fact]
    public async Task An_invalid_batchjob_gets_a_condition_and_an_event_and_no_job_while_others_keep_flowing()
    {
        Simulate(new PodSimulatorOptions { Namespace = _ns });
        StartController("replica-a");

        // The schema accepts this; the parser, shared with every door, does not.
        await fixture.ApplyAsync(BatchJobYaml(_ns, "invalid", "", sweep: "{grid: {rate: [0.5]}}").Replace("parallelism: 2", "parallelism: 5", StringComparison.Ordinal));
        await fixture.ApplyAsync(BatchJobYaml(_ns, "valid"));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "valid")) == "Succeeded", Converge, "the valid BatchJob succeeds");
        await Eventually.TrueAsync(async () => Condition(await BatchJobAsync(fixture.Admin, _ns, "invalid"), "Valid") is not null, Converge, "the invalid BatchJob has a Valid condition");

        var valid = Condition(await BatchJobAsync(fixture.Admin, _ns, "invalid"), "Valid")!.Value;
        Assert.Equal(("False", "InvalidSpec"), (valid.GetProperty("status").GetString(), valid.GetProperty("reason").GetString()));
        Assert.Contains("spec.parallelism: must be <= spec.completions (1), got 5", valid.GetProperty("message").GetString(), StringComparison.Ordinal);
        await HasEventAsync("invalid", "InvalidSpec", "Warning");
        Assert.Empty(await JobsAsync(fixture.Admin, _ns, "invalid"));
    }

    [Fact]
    public async Task Deleting_a_running_batchjob_leaves_no_job_pod_or_configmap_of_it()
    {
        Simulate(new PodSimulatorOptions { Namespace = _ns, RunningFor = TimeSpan.FromMinutes(10) });
        StartController("replica-a");
        await fixture.ApplyAsync(BatchJobYaml(_ns, "doomed"));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "doomed")) == "Running", Converge, "the BatchJob runs");
        Assert.NotEmpty(await PodsAsync(fixture.Admin, _ns, "doomed"));

        await fixture.KubectlAsync("delete", "bj", "doomed", "-n", _ns, "--wait=false");

        await Eventually.TrueAsync(async () => await BatchJobAsync(fixture.Admin, _ns, "doomed") is null, Converge, "the BatchJob is gone");
        await Eventually.TrueAsync(async () => (await JobsAsync(fixture.Admin, _ns, "doomed")).Count == 0, Converge, "its Job is gone (the garbage collector follows its owner reference)");
        await Eventually.TrueAsync(async () => (await PodsAsync(fixture.Admin, _ns, "doomed")).Count == 0, Converge, "its pods are gone");
        var configMaps = await fixture.Admin.CoreV1.ListNamespacedConfigMapAsync(_ns, labelSelector: "batchrunner.io/batchjob=doomed");
        Assert.Empty(configMaps.Items);
    }

    [Fact]
    public async Task A_controller_killed_mid_run_and_restarted_creates_no_second_job()
    {
        Simulate(new PodSimulatorOptions { Namespace = _ns, RunningFor = TimeSpan.FromMinutes(10) });
        var first = StartController("replica-a");
        await fixture.ApplyAsync(BatchJobYaml(_ns, "steady"));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "steady")) == "Running", Converge, "the BatchJob runs");
        var uid = Assert.Single(await JobsAsync(fixture.Admin, _ns, "steady")).Metadata.Uid;

        await first.KillAsync();
        // The status is wiped, as if the controller had died before writing it: only the cluster can tell what exists.
        await fixture.KubectlAsync("patch", "bj", "steady", "-n", _ns, "--type=merge", "--subresource=status", "-p", "{\"status\":null}");
        var second = StartController("replica-b");
        await Eventually.TrueAsync(async () => second.Log.Contains("leads", StringComparison.Ordinal), TimeSpan.FromSeconds(40), "the new replica leads");
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "steady")) == "Running", Converge, "the status is derived again");

        var job = Assert.Single(await JobsAsync(fixture.Admin, _ns, "steady"));
        Assert.Equal(uid, job.Metadata.Uid);
        Assert.Equal("True", Condition(await BatchJobAsync(fixture.Admin, _ns, "steady"), "Dispatched")?.GetProperty("status").GetString());
    }

    [Fact]
    public async Task With_two_replicas_only_the_leader_acts_and_the_other_takes_over_within_30_seconds_of_its_death()
    {
        Simulate(new PodSimulatorOptions { Namespace = _ns });
        var lease = $"lease-{_ns}";
        var a = StartController("replica-a", $"--BatchRunner:LeaderElection:LeaseName={lease}");
        await Eventually.TrueAsync(async () => a.Log.Contains("replica-a leads", StringComparison.Ordinal), Converge, "replica-a leads");
        var b = StartController("replica-b", $"--BatchRunner:LeaderElection:LeaseName={lease}");
        await Eventually.TrueAsync(async () => (await b.GetAsync("/readyz")).Status == HttpStatusCode.OK, Converge, "the standby is ready");

        await fixture.ApplyAsync(BatchJobYaml(_ns, "first"));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "first")) == "Succeeded", Converge, "the first BatchJob succeeds");
        Assert.Contains("Created Job first", a.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("Created Job", b.Log, StringComparison.Ordinal);
        Assert.Equal(0, await b.MetricAsync("batchrunner_leader"));

        await a.KillAsync();
        var killedAt = DateTime.UtcNow;
        await fixture.ApplyAsync(BatchJobYaml(_ns, "second"));
        await Eventually.TrueAsync(async () => (await JobsAsync(fixture.Admin, _ns, "second")).Count == 1, TimeSpan.FromSeconds(45), "the standby dispatches the second BatchJob");
        var takeover = DateTime.UtcNow - killedAt;

        output.WriteLine($"takeover after kill -9: {takeover.TotalSeconds:F1} s");
        Assert.True(takeover < TimeSpan.FromSeconds(30), $"took over after {takeover.TotalSeconds:F1} s");
        Assert.Equal("replica-b", (await fixture.Admin.CoordinationV1.ReadNamespacedLeaseAsync(lease, OperatorFixture.SystemNamespace)).Spec.HolderIdentity);
    }

    [Fact]
    public async Task A_parallelism_change_reaches_the_running_job_and_a_command_change_is_refused_visibly()
    {
        Simulate(new PodSimulatorOptions { Namespace = _ns, RunningFor = TimeSpan.FromMinutes(10) });
        StartController("replica-a");
        await fixture.ApplyAsync(BatchJobYaml(_ns, "tuned"));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "tuned")) == "Running", Converge, "the BatchJob runs");

        await fixture.KubectlAsync("patch", "bj", "tuned", "-n", _ns, "--type=merge", "-p", "{\"spec\":{\"parallelism\":3}}");
        await Eventually.TrueAsync(async () => Assert.Single(await JobsAsync(fixture.Admin, _ns, "tuned")).Spec.Parallelism == 3, Converge, "the Job's parallelism follows");

        await fixture.KubectlAsync("patch", "bj", "tuned", "-n", _ns, "--type=merge", "-p", "{\"spec\":{\"command\":[\"/bin/true\"]}}");
        await Eventually.TrueAsync(async () => Condition(await BatchJobAsync(fixture.Admin, _ns, "tuned"), "SpecApplied")?.GetProperty("status").GetString() == "False", Converge, "the change is refused");

        var applied = Condition(await BatchJobAsync(fixture.Admin, _ns, "tuned"), "SpecApplied")!.Value;
        Assert.Equal("ImmutableFieldChanged", applied.GetProperty("reason").GetString());
        Assert.Contains("spec.command", applied.GetProperty("message").GetString(), StringComparison.Ordinal);
        await HasEventAsync("tuned", "ImmutableFieldChanged", "Warning");
        Assert.Equal(["/bin/sh", "-c", "echo \"$BATCHRUNNER_PARAMS\""], Assert.Single(await JobsAsync(fixture.Admin, _ns, "tuned")).Spec.Template.Spec.Containers[0].Args);
    }

    [Fact]
    public async Task The_controllers_service_account_can_do_what_it_needs_and_nothing_more()
    {
        var subject = $"--as=system:serviceaccount:{OperatorFixture.SystemNamespace}:{OperatorFixture.ServiceAccount}";
        foreach (var allowed in new[] { "list batchjobs.batchrunner.io -A", "create batchjobs.batchrunner.io -n x", "patch batchjobs.batchrunner.io/status -n x", "create jobs.batch -n x", "delete configmaps -n x", "create events -n x" })
        {
            Assert.Equal(0, (await fixture.TryKubectlAsync(["auth", "can-i", .. allowed.Split(' '), subject])).ExitCode);
        }

        foreach (var denied in new[] { "get secrets -n x", "create pods -n x", "delete batchjobs.batchrunner.io -n x", "update configmaps -n x", "list nodes", "create leases.coordination.k8s.io -n default" })
        {
            var (exitCode, text) = await fixture.TryKubectlAsync(["auth", "can-i", .. denied.Split(' '), subject]);
            Assert.True(exitCode != 0, $"the controller may {denied}: {text}");
        }
    }

    [Fact]
    public async Task Kubectl_explain_describes_the_spec()
    {
        // The API server publishes a new CRD's schema to OpenAPI a few seconds after the CRD is established.
        var explained = "";
        await Eventually.TrueAsync(
            async () => (await fixture.TryKubectlAsync("explain", "batchjob.spec.sweep")) is (0, var text) && (explained = text).Length > 0,
            TimeSpan.FromSeconds(60), "kubectl explain finds BatchJob");

        Assert.Contains("grid", explained, StringComparison.Ordinal);
        Assert.Contains("repeats", explained, StringComparison.Ordinal);
    }

    private void Simulate(PodSimulatorOptions options) => _owned.Add(PodSimulator.Start(fixture.Admin, options));

    private ControllerProcess StartController(string identity, params string[] args)
    {
        var controller = ControllerProcess.Start(fixture.ControllerKubeconfig, identity, args);
        _controllers.Add(controller);
        return controller;
    }
}
