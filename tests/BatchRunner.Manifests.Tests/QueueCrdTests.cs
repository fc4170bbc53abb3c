using System.Reflection;
using System.Text.Json.Nodes;
using BatchRunner.Core.Scheduling;

namespace BatchRunner.Manifests.Tests;

/// <summary>The Queue CRD and the reader the scheduler uses for it say the same fields, and what the schema lets in reads.</summary>
public class QueueCrdTests
{
    private static readonly JsonObject Crd = Assert.Single(Manifests.Load(File.ReadAllText(Path.Combine(Manifests.Root, "crds", "queues.batchrunner.io.yaml"))));

    private static JsonObject Schema => Crd["spec"]!["versions"]!.AsArray().Single()!["schema"]!["openAPIV3Schema"]!.AsObject();

    private static HashSet<string> ReaderFields(string name) =>
        Assert.IsType<HashSet<string>>(typeof(QueueDefinitionReader).GetField(name, BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null));

    [Fact]
    public void The_queue_crd_names_the_fields_the_reader_knows_and_is_cluster_scoped()
    {
        var spec = Schema["properties"]!["spec"]!.AsObject();

        Assert.Equal("Cluster", Manifests.Str(Crd["spec"]!["scope"]));
        Assert.Equal(ReaderFields("Fields").Order(StringComparer.Ordinal), spec["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(ReaderFields("QuotaFields").Order(StringComparer.Ordinal),
            spec["properties"]!["quotas"]!["additionalProperties"]!["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_printer_columns_show_pending_and_admitted_indexes_and_usage_from_the_status()
    {
        var columns = Crd["spec"]!["versions"]![0]!["additionalPrinterColumns"]!.AsArray().Select(c => c!.AsObject()).ToList();
        var status = Schema["properties"]!["status"]!["properties"]!.AsObject();

        Assert.Equal(["Backends", "Pending", "Admitted", "Waiting", "Usage", "Valid", "Age"], columns.Select(c => Manifests.Str(c["name"])));
        foreach (var path in columns.Select(c => Manifests.Str(c["jsonPath"])!).Where(p => p.StartsWith(".status.", StringComparison.Ordinal) && !p.Contains('[', StringComparison.Ordinal)))
        {
            Assert.True(status.ContainsKey(path[".status.".Length..]), $"{path} is not a field of the status schema");
        }
    }

    [Fact]
    public void The_example_queue_reads_without_errors()
    {
        var example = Assert.Single(Manifests.Load(File.ReadAllText(Path.Combine(Manifests.Root, "examples", "queues", "research.yaml"))));

        var (queue, errors) = QueueDefinitionReader.Read(Manifests.Str(example["metadata"]!["name"])!, example["spec"], "spec");

        Assert.Empty(errors);
        Assert.Empty(CrdSchema.Validate(example, Schema));
        Assert.True(queue!.QuotaOf(Core.Spec.Backend.Kubernetes).Indexes < int.MaxValue);
        Assert.Equal(Core.Spec.Backend.AwsBatch, queue.OverflowAfter(Core.Spec.Backend.Kubernetes));
    }
}
