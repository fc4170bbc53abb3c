using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Sweeps;
using Xunit;

namespace BatchRunner.Core.Tests;

/// <summary>A point's key: what decides an index's result, field by field, and nothing else.</summary>
public sealed class PointKeyTests
{
    private const string Base = """
          image: python:3.12
          args: [--fast]
          env: [{name: MODE, value: fast}, {name: A, value: b}]
          resources: {cpu: 500m, memory: 1Gi}
          sweep: {grid: {rate: [0.5, 0.9], servers: [1, 2]}, repeats: 2, seed: 7}
        """;

    private static PointKey KeyOf(string spec, int index = 0, string? program = null, string name = "sweep", (string From, string To)? change = null)
    {
        var yaml = Specs.Yaml(spec, name);
        var job = Specs.Valid(change is { } c ? yaml.Replace(c.From, c.To, StringComparison.Ordinal) : yaml);
        return PointKey.For(job, new SweepPlan(job.Spec).For(index), program);
    }

    public static TheoryData<string, string, string> Changes => new()
    {
        { "image: python:3.12", "image: python:3.13", "image" },
        { "command: [python, sim.py]", "command: [python, sim2.py]", "command" },
        { "args: [--fast]", "args: [--slow]", "args" },
        { "{name: MODE, value: fast}", "{name: MODE, value: slow}", "env" },
        { "cpu: 500m", "cpu: \"1\"", "resources" },
        { "seed: 7", "seed: 8", "seed" },
    };

    [Theory]
    [MemberData(nameof(Changes))]
    public void Changing_one_field_changes_the_key_and_names_exactly_that_field(string from, string to, string field)
    {
        var before = KeyOf(Base);
        var after = KeyOf(Base, change: (from, to));

        Assert.NotEqual(before.Hash, after.Hash);
        Assert.Equal([field], after.DifferingFrom(before.Fields));
    }

    [Fact]
    public void Execution_settings_the_name_and_the_order_of_env_do_not_change_the_key_but_the_program_and_format_do()
    {
        var key = KeyOf(Base);

        Assert.Equal(key.Hash, KeyOf(Base + "\n  parallelism: 2\n  retry: {attempts: 3}\n  timeoutSeconds: 5\n  queue: q\n  priority: 4\n  reuse: false\n").Hash);
        Assert.Equal(key.Hash, KeyOf(Base, name: "other").Hash);
        Assert.Equal(key.Hash, KeyOf(Base.Replace("[{name: MODE, value: fast}, {name: A, value: b}]", "[{name: A, value: b}, {name: MODE, value: fast}]", StringComparison.Ordinal)).Hash);
        Assert.Equal(["program"], KeyOf(Base, program: "sim.py=abc").DifferingFrom(key.Fields));
        Assert.Equal(["results.format"], KeyOf(Base + "\n  results: {format: csv}\n").DifferingFrom(key.Fields));
    }

    [Fact]
    public void Indexes_of_one_point_differ_by_seed_and_points_by_params()
    {
        Assert.Equal(["seed"], KeyOf(Base, 1).DifferingFrom(KeyOf(Base, 0).Fields));
        Assert.Equal(["params", "seed"], KeyOf(Base, 2).DifferingFrom(KeyOf(Base, 0).Fields));
        Assert.Equal(KeyOf(Base, 3).Fields, PointKey.ParseFields(KeyOf(Base, 3).FieldsText));
    }

    [Theory]
    [InlineData("reuse: false", false, null)]
    [InlineData("reuse: true", true, null)]
    [InlineData("", true, null)]
    [InlineData("reuse: \"no\"", true, "spec.reuse: expected true or false, got the string \"no\"")]
    public void Reuse_is_on_unless_turned_off_and_anything_else_is_refused(string line, bool reuses, string? error)
    {
        var parsed = BatchJobParser.Parse(Specs.Yaml(Base + "\n  " + line + "\n"));

        Assert.Equal(error, parsed.Errors.Count == 0 ? null : parsed.Errors[0].ToString());
        if (error is null)
        {
            Assert.Equal(reuses, parsed.Job!.Spec.ReusesResults);
        }
    }
}
