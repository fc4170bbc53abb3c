using BatchRunner.Core.Runs;
using BatchRunner.Core.Sweeps;

namespace BatchRunner.Core.Tests;

public class WorkloadEnvironmentTests
{
    [Fact]
    public void The_contract_names_its_variables()
    {
        Assert.Equal(
            ["BATCHRUNNER_INDEX", "BATCHRUNNER_PARAMS", "BATCHRUNNER_SEED", "BATCHRUNNER_OUTPUT_DIR", "BATCHRUNNER_JOB", "BATCHRUNNER_RUN_ID", "BATCHRUNNER_REPEAT"],
            [WorkloadEnvironment.Index, WorkloadEnvironment.Params, WorkloadEnvironment.Seed, WorkloadEnvironment.OutputDir, WorkloadEnvironment.Job, WorkloadEnvironment.RunId, WorkloadEnvironment.Repeat]);
    }

    [Fact]
    public void An_index_gets_the_spec_variables_then_the_contract_values()
    {
        var job = Specs.Valid(Specs.Yaml("""
              env: [{name: MODE, value: fast}, {name: THREADS, value: "4"}]
              sweep: {grid: {servers: [1, 2]}, repeats: 3, seed: 9}
            """, name: "queue-sweep"));
        var assignment = new SweepPlan(job.Spec).For(4);

        var variables = WorkloadEnvironment.For(job, "r0123456789a", assignment, "/data/out/index=4/attempt=1/output");

        Assert.Equal(
            [
                KeyValuePair.Create("MODE", "fast"),
                KeyValuePair.Create("THREADS", "4"),
                KeyValuePair.Create("BATCHRUNNER_INDEX", "4"),
                KeyValuePair.Create("BATCHRUNNER_PARAMS", """{"servers":2}"""),
                KeyValuePair.Create("BATCHRUNNER_SEED", SweepPlan.SeedFor(9, 4).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                KeyValuePair.Create("BATCHRUNNER_OUTPUT_DIR", "/data/out/index=4/attempt=1/output"),
                KeyValuePair.Create("BATCHRUNNER_JOB", "queue-sweep"),
                KeyValuePair.Create("BATCHRUNNER_RUN_ID", "r0123456789a"),
                KeyValuePair.Create("BATCHRUNNER_REPEAT", "1"),
            ],
            variables);
    }

    [Theory]
    [InlineData("BATCHRUNNER_SEED")]
    [InlineData("BATCHRUNNER_PARAMS")]
    [InlineData("batchrunner_index")]
    [InlineData("BatchRunner_Anything")]
    public void The_spec_cannot_set_a_batchrunner_variable(string name)
    {
        var errors = Specs.Errors(Specs.Yaml($"  env: [{{name: MODE, value: fast}}, {{name: {name}, value: \"1\"}}]\n"));

        Assert.Equal([$"spec.env[1].name: the prefix BATCHRUNNER_ is reserved for the runner's own variables, got \"{name}\""], errors);
    }
}
