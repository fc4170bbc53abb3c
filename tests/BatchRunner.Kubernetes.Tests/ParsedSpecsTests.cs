using BatchRunner.Kubernetes.Controller;

namespace BatchRunner.Kubernetes.Tests;

public sealed class ParsedSpecsTests
{
    private const string Spec = """{"completions": 4, "parallelism": 2}""";

    [Fact]
    public void The_same_object_and_generation_is_parsed_once()
    {
        var specs = new ParsedSpecs();
        var batchJob = Specs.Object(Spec);
        batchJob.Metadata.Uid = "u-1";

        var first = specs.Of(batchJob);
        batchJob.Metadata.ResourceVersion = "2";

        Assert.Same(first, specs.Of(batchJob));
    }

    [Fact]
    public void A_new_generation_new_labels_or_a_new_object_of_the_name_is_parsed_again()
    {
        var specs = new ParsedSpecs();
        var batchJob = Specs.Object(Spec);
        batchJob.Metadata.Uid = "u-1";
        batchJob.Metadata.Generation = 1;
        var first = specs.Of(batchJob);

        var changed = Specs.Object("""{"completions": 6, "parallelism": 2}""");
        (changed.Metadata.Uid, changed.Metadata.Generation, changed.Metadata.ResourceVersion) = ("u-1", 2, "2");
        var beforeLabels = specs.Of(changed);
        Assert.Equal(6, beforeLabels.Job!.Spec.Completions);

        // A label change is a new resourceVersion of the same generation.
        (changed.Metadata.Labels, changed.Metadata.ResourceVersion) = (new Dictionary<string, string> { ["team"] = "b" }, "3");
        Assert.NotSame(beforeLabels, specs.Of(changed));

        var recreated = Specs.Object(Spec);
        (recreated.Metadata.Uid, recreated.Metadata.Generation) = ("u-2", 1);
        Assert.NotSame(first, specs.Of(recreated));
    }

    [Fact]
    public void A_forgotten_batchjob_leaves_nothing_behind()
    {
        var specs = new ParsedSpecs();
        var batchJob = Specs.Object(Spec);
        batchJob.Metadata.Uid = "u-1";
        specs.Of(batchJob);

        specs.Forget(ObjectKey.Of(batchJob));

        Assert.Equal(0, specs.Count);
    }
}
