using System.Text.Json;
using BatchRunner.Core.Sweeps;

namespace BatchRunner.Core.Tests;

public class SweepPlanTests
{
    private static SweepPlan Plan(string yaml) => new(Specs.Valid(yaml).Spec);

    private static SweepPlan SweepPlanOf(string sweep) => Plan(Specs.SweepYaml(sweep));

    private static string[] AllParams(SweepPlan plan) => Enumerable.Range(0, plan.Count).Select(i => plan.For(i).ParamsJson).ToArray();

    [Fact]
    public void Grid_indexes_nest_in_parameter_name_order_whatever_the_document_order()
    {
        var written = SweepPlanOf("    grid: {servers: [1, 2], policy: [fifo, lifo, random]}\n");
        var sorted = SweepPlanOf("    grid: {policy: [fifo, lifo, random], servers: [1, 2]}\n");

        Assert.Equal(
            [
                """{"policy":"fifo","servers":1}""", """{"policy":"fifo","servers":2}""", """{"policy":"lifo","servers":1}""",
                """{"policy":"lifo","servers":2}""", """{"policy":"random","servers":1}""", """{"policy":"random","servers":2}""",
            ],
            AllParams(written));
        Assert.Equal(AllParams(written), AllParams(sorted));
        Assert.Equal(["policy", "servers"], written.ParameterNames);
    }

    [Fact]
    public void List_points_keep_their_order_and_name_their_parameters_sorted()
    {
        var plan = SweepPlanOf("    list: [{servers: 4, rate: 0.9}, {rate: 0.1, servers: 1}]\n");

        Assert.Equal(["""{"rate":0.9,"servers":4}""", """{"rate":0.1,"servers":1}"""], AllParams(plan));
    }

    [Fact]
    public void List_indexes_follow_the_list_order()
    {
        var plan = SweepPlanOf("    list: [{rate: 0.9, servers: 4}, {rate: 0.1, servers: 1}, {rate: 0.5, servers: 2}]\n");

        Assert.Equal(["""{"rate":0.9,"servers":4}""", """{"rate":0.1,"servers":1}""", """{"rate":0.5,"servers":2}"""], AllParams(plan));
        Assert.Equal(["rate", "servers"], plan.ParameterNames);
    }

    [Fact]
    public void Repeats_of_a_point_are_consecutive_indexes()
    {
        var plan = SweepPlanOf("    grid: {servers: [1, 2]}\n    repeats: 3\n");

        Assert.Equal(6, plan.Count);
        for (var index = 0; index < plan.Count; index++)
        {
            var assignment = plan.For(index);
            Assert.Equal(index, assignment.Index);
            Assert.Equal(index, (assignment.Point * 3) + assignment.Repeat);
            Assert.Equal(index < 3 ? """{"servers":1}""" : """{"servers":2}""", assignment.ParamsJson);
        }

        Assert.Equal([0, 1, 2, 0, 1, 2], Enumerable.Range(0, 6).Select(i => plan.For(i).Repeat));
    }

    [Fact]
    public void Params_json_is_exact_and_compact()
    {
        var plan = SweepPlanOf("    grid: {arrival_rate: [0.5], servers: [2]}\n");

        Assert.Equal("""{"arrival_rate":0.5,"servers":2}""", plan.For(0).ParamsJson);
    }

    [Fact]
    public void Integers_stay_integers_and_reals_keep_their_decimal_point()
    {
        var plan = SweepPlanOf("    grid: {x: [1, 2.50, -3, 1e3, 1.5e-7, true]}\n");

        Assert.Equal(
            ["""{"x":1}""", """{"x":2.5}""", """{"x":-3}""", """{"x":1000}""", """{"x":1.5E-07}""", """{"x":true}"""],
            AllParams(plan));
    }

    [Fact]
    public void String_values_are_json_escaped()
    {
        var values = new[] { "fifo", "say \"hi\"", @"C:\runs", "line\nbreak", "Zürich", "</script>" };
        var plan = SweepPlanOf($"    grid:\n      label: {JsonSerializer.Serialize(values)}\n");

        var decoded = AllParams(plan).Select(json => JsonDocument.Parse(json).RootElement.GetProperty("label").GetString());

        Assert.Equal(values, decoded);
        Assert.Equal("""{"label":"fifo"}""", plan.For(0).ParamsJson);
    }

    [Fact]
    public void Every_index_of_a_grid_with_repeats_gets_a_distinct_point_and_repeat_and_all_appear()
    {
        var plan = SweepPlanOf("    grid: {a: [1, 2, 3], b: [w, x, y, z], c: [true, false]}\n    repeats: 3\n");

        var expected = (
            from a in new[] { "1", "2", "3" }
            from b in new[] { "w", "x", "y", "z" }
            from c in new[] { "true", "false" }
            from repeat in new[] { 0, 1, 2 }
            select ($$"""{"a":{{a}},"b":"{{b}}","c":{{c}}}""", repeat)).ToList();
        var actual = Enumerable.Range(0, plan.Count).Select(i => (plan.For(i).ParamsJson, plan.For(i).Repeat)).ToList();

        Assert.Equal(72, plan.Count);
        Assert.Equal(72, actual.Distinct().Count());
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Seeds_are_distinct_and_31_bit_across_a_100000_index_sweep()
    {
        var values = string.Join(", ", Enumerable.Range(0, 100));
        var plan = SweepPlanOf($"    grid: {{a: [{values}], b: [{values}]}}\n    repeats: 10\n");

        var seeds = Enumerable.Range(0, plan.Count).Select(i => plan.For(i).Seed).ToList();

        Assert.Equal(100_000, plan.Count);
        Assert.Equal(plan.Count, seeds.Distinct().Count());
        Assert.All(seeds, seed => Assert.InRange(seed, 0, int.MaxValue));
    }

    [Fact]
    public void The_same_spec_parsed_twice_gives_identical_assignments()
    {
        var yaml = Specs.SweepYaml("    grid: {rate: [0.5, 0.9], servers: [1, 2, 4]}\n    repeats: 4\n    seed: 7\n");
        var first = Plan(yaml);
        var second = Plan(yaml);

        Assert.Equal(Enumerable.Range(0, first.Count).Select(first.For), Enumerable.Range(0, second.Count).Select(second.For));
    }

    [Fact]
    public void A_different_base_seed_changes_the_seeds_but_not_the_params()
    {
        var seven = SweepPlanOf("    grid: {rate: [0.5, 0.9]}\n    repeats: 50\n    seed: 7\n");
        var eight = SweepPlanOf("    grid: {rate: [0.5, 0.9]}\n    repeats: 50\n    seed: 8\n");

        Assert.Equal((7L, 8L), (seven.BaseSeed, eight.BaseSeed));
        Assert.Equal(AllParams(seven), AllParams(eight));
        var same = Enumerable.Range(0, seven.Count).Count(i => seven.For(i).Seed == eight.For(i).Seed);
        Assert.Equal(0, same);
    }

    [Fact]
    public void A_job_without_a_sweep_gives_empty_params_and_distinct_seeds()
    {
        var plan = Plan(Specs.Yaml("  completions: 50\n"));

        Assert.Equal(50, plan.Count);
        Assert.Empty(plan.ParameterNames);
        Assert.All(Enumerable.Range(0, 50), i => Assert.Equal(new { Point = i, Repeat = 0, ParamsJson = "{}" }, new { plan.For(i).Point, plan.For(i).Repeat, plan.For(i).ParamsJson }));
        Assert.Equal(50, Enumerable.Range(0, 50).Select(i => plan.For(i).Seed).Distinct().Count());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(6)]
    [InlineData(int.MaxValue)]
    public void An_index_outside_the_plan_throws(int index)
    {
        var plan = SweepPlanOf("    grid: {servers: [1, 2, 3]}\n    repeats: 2\n");

        Assert.Throws<ArgumentOutOfRangeException>(() => plan.For(index));
    }
}
