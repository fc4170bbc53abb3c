using BatchRunner.Core.Spec;

namespace BatchRunner.Manifests.Tests;

/// <summary>manifests/examples: each valid one parses and fits the CRD; each invalid-* one fits the CRD and fails the parser.</summary>
public class ExampleTests
{
    public static TheoryData<string> Examples() => new(Manifests.ExampleFiles().Select(Path.GetFileName)!);

    [Fact]
    public void There_are_valid_and_invalid_examples()
    {
        var names = Manifests.ExampleFiles().Select(Path.GetFileName).ToList();

        Assert.Contains("mmc-sweep.yaml", names);
        Assert.Contains("mmc-sweep-kubernetes.yaml", names);
        Assert.Contains("invalid-parallelism.yaml", names);
    }

    [Fact]
    public void Every_example_batchjob_is_accepted_by_the_parser()
    {
        foreach (var file in Manifests.ExampleFiles().Where(f => !Manifests.IsInvalidExample(f)))
        {
            var result = BatchJobParser.Parse(File.ReadAllText(file));
            Assert.True(result.IsValid, $"{Path.GetFileName(file)}:\n{Documents.Errors(result)}");
        }
    }

    [Fact]
    public void Every_invalid_example_is_rejected_by_the_parser()
    {
        foreach (var file in Manifests.ExampleFiles().Where(Manifests.IsInvalidExample))
        {
            var result = BatchJobParser.Parse(File.ReadAllText(file));
            Assert.False(result.IsValid, $"{Path.GetFileName(file)} is named invalid-* but parses");
            Assert.NotEmpty(result.Errors);
        }
    }

    [Fact]
    public void The_invalid_parallelism_example_fails_only_for_its_parallelism()
    {
        var result = BatchJobParser.Parse(File.ReadAllText(Path.Combine(Manifests.ExamplesPath, "invalid-parallelism.yaml")));

        Assert.Equal(["spec.parallelism: must be <= spec.completions (4), got 8"], result.Errors.Select(e => e.ToString()));
    }

    /// <summary>
    /// Every example, invalid ones included, gets through `kubectl apply`: the schema accepts it and prunes nothing.
    /// The invalid ones fail only in the parser, where the controller reports why.
    /// </summary>
    [Theory]
    [MemberData(nameof(Examples))]
    public void Every_example_fits_the_crd_schema(string file)
    {
        var document = Assert.Single(Manifests.Load(File.ReadAllText(Path.Combine(Manifests.ExamplesPath, file))));

        var errors = CrdSchema.Validate(document, Manifests.CrdSchema());

        Assert.True(errors.Count == 0, CrdSchema.Describe(errors));
    }

    [Fact]
    public void The_kubernetes_sweep_runs_the_same_indexes_as_the_local_one_on_kubernetes()
    {
        var local = Parse("mmc-sweep.yaml");
        var cluster = Parse("mmc-sweep-kubernetes.yaml");

        Assert.Equal(Backend.Kubernetes, cluster.Spec.Backend);
        Assert.Equal("batchrunner/mmc-queue:latest", cluster.Spec.Image);
        Assert.Equal("default", cluster.Metadata.Namespace);
        Assert.Equal((local.Spec.Completions, local.Spec.Parallelism), (cluster.Spec.Completions, cluster.Spec.Parallelism));
        Assert.Equal(72, cluster.Spec.Completions);
        Assert.Equal(Describe(local.Spec.Sweep!), Describe(cluster.Spec.Sweep!));
        Assert.Equal(local.Spec.Retry, cluster.Spec.Retry);
        Assert.Equal(local.Spec.Env, cluster.Spec.Env);
    }

    private static BatchJob Parse(string file)
    {
        var result = BatchJobParser.Parse(File.ReadAllText(Path.Combine(Manifests.ExamplesPath, file)));
        Assert.True(result.IsValid, Documents.Errors(result));
        return result.Job!;
    }

    private static string Describe(SweepSpec sweep) =>
        string.Join("; ", sweep.Grid.Select(a => $"{a.Name}=[{string.Join(",", a.Values.Select(v => v.Json))}]")) +
        $" repeats={sweep.Repeats} seed={sweep.Seed}";
}
