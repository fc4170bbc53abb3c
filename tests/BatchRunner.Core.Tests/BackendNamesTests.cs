using BatchRunner.Core.Spec;
using Xunit;

namespace BatchRunner.Core.Tests;

public sealed class BackendNamesTests
{
    [Theory]
    [InlineData(Backend.Local, "local")]
    [InlineData(Backend.Kubernetes, "kubernetes")]
    [InlineData(Backend.AwsBatch, "aws-batch")]
    public void Each_backend_has_one_name_that_reads_back_as_itself(Backend backend, string name)
    {
        Assert.Equal(name, backend.Name());
        Assert.True(BackendNames.TryParse(name, out var read));
        Assert.Equal(backend, read);
    }

    [Fact]
    public void Every_backend_value_is_in_the_table() =>
        Assert.Equal(Enum.GetValues<Backend>().Length, BackendNames.All.Distinct().Count());

    [Fact]
    public void A_value_outside_the_table_is_an_error_not_local() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ((Backend)42).Name());

    [Theory]
    [InlineData("Local")]
    [InlineData("aws_batch")]
    [InlineData("")]
    [InlineData("slurm")]
    public void An_unknown_name_is_not_read_as_any_backend(string name) =>
        Assert.False(BackendNames.TryParse(name, out _));

    [Fact]
    public void A_spec_naming_an_unknown_backend_is_invalid_at_spec_backend()
    {
        var result = BatchJobParser.Parse("""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: b}
            spec: {command: ["true"], backend: slurm}
            """);

        Assert.False(result.IsValid);
        var only = Assert.Single(result.Errors);
        Assert.Equal("spec.backend", only.Path);
        Assert.Contains("local, kubernetes, aws-batch", only.Message, StringComparison.Ordinal);
    }
}
