using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Core.Sweeps;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Results.Tests;

/// <summary>The dispatched spec read back by the wrapper gives the same run id, parameters and seeds as the controller's.</summary>
public sealed class StoredSpecTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> Documents =>
    [
        "command: [sim]",
        """
        image: reg/sim:1
        command: [python, sim.py]
        args: ["--x", "a b"]
        env: [{name: A, value: "1"}, {name: B, value: "x y"}]
        resources: {cpu: 500m, memory: 512Mi}
        parallelism: 3
        sweep: {grid: {rate: [0.5, 1.0, 1e-7, 3], mode: [fifo, lifo], on: [true, false]}, repeats: 3, seed: 12}
        retry: {attempts: 4, backoffSeconds: 2.5, maxBackoffSeconds: 60}
        timeoutSeconds: 90.5
        deadlineSeconds: 3600
        backend: aws-batch
        results: {uri: "s3://b/p", format: csv}
        """,
        """
        command: [sim]
        image: reg/sim:2
        sweep: {list: [{a: 1, b: "x"}, {a: 2.25}, {c: true}], repeats: 2}
        backend: kubernetes
        """,
    ];

    [Theory]
    [MemberData(nameof(Documents))]
    public void The_resolved_spec_round_trips_exactly(string spec)
    {
        var job = BatchJobParser.Parse($"apiVersion: batchrunner.io/v1alpha1\nkind: BatchJob\nmetadata: {{name: j, namespace: ns, labels: {{team: a}}}}\nspec:\n" +
            string.Join("\n", spec.Split('\n').Select(l => "  " + l))).GetJobOrThrow();

        var back = StoredSpec.Parse(RunIdentity.SpecJson(job));

        Assert.Equal(RunIdentity.SpecJson(job), RunIdentity.SpecJson(back));
        Assert.Equal(RunIdentity.For(job), RunIdentity.For(back));
        var (plan, again) = (new SweepPlan(job.Spec), new SweepPlan(back.Spec));
        Assert.Equal(Enumerable.Range(0, plan.Count).Select(plan.For), Enumerable.Range(0, again.Count).Select(again.For));
    }

    [Fact]
    public void A_stored_spec_in_neither_form_is_refused_naming_why()
    {
        var error = Assert.Throws<InvalidSpecException>(() => StoredSpec.Parse("""{"Spec": {"Image": 5}}"""));
        Assert.StartsWith("stored spec is not in the form BatchRunner writes", error.Errors.Single().Message, StringComparison.Ordinal);
        Assert.Throws<InvalidSpecException>(() => StoredSpec.Parse("kind: Other"));
    }

    [Fact]
    public async Task In_a_pod_the_wrapper_reads_the_plan_configmaps_spec_and_runs_each_index_as_the_sweep_plan_says()
    {
        var job = BatchJobParser.Parse("""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: pods}
            spec:
              image: img
              command: ["/bin/sh", "-c", "echo \"{\\\"p\\\": $BATCHRUNNER_PARAMS}\" > $BATCHRUNNER_OUTPUT_DIR/r.jsonl"]
              sweep: {list: [{a: 1}, {a: 2, b: "two"}], repeats: 2, seed: 99}
            """, Backend.Kubernetes).GetJobOrThrow();
        var planFolder = _temp.Sub("plan");
        foreach (var (key, content) in PodEntrypoint.PlanFiles(job))
        {
            await File.WriteAllTextAsync(Path.Combine(planFolder, key), content);
        }

        var store = _temp.Sub("store");
        var plan = new SweepPlan(job.Spec);
        var runId = RunIdentity.For(job);
        for (var index = 0; index < plan.Count; index++)
        {
            var environment = new Dictionary<string, string> { ["JOB_COMPLETION_INDEX"] = $"{index}", ["BATCHRUNNER_OUTPUT_DIR"] = _temp.Sub($"out-{index}") };
            var result = await Wrapper.RunAsync(Wrapper.Arguments(Path.Combine(planFolder, PodEntrypoint.SpecKey), store, job), environment);
            Assert.True(result.ExitCode == 0, result.Stderr);

            var row = WrapperTests.Ledger(store, "pods", runId, index, 1);
            Assert.Equal((plan.For(index).Seed, plan.For(index).ParamsJson, "kubernetes"), (row.Seed, row.Params.GetRawText(), row.Backend));
        }
    }
}
