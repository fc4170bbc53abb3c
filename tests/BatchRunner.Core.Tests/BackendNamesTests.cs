using BatchRunner.Core.Spec;
using Xunit;

namespace BatchRunner.Core.Tests;

public sealed class BackendNamesTests
{
    public static TheoryData<string, Backend> BuiltIn => new()
    {
        { "local", Backend.Local },
        { "kubernetes", Backend.Kubernetes },
        { "aws-batch", Backend.AwsBatch },
    };

    [Theory]
    [MemberData(nameof(BuiltIn))]
    public void Each_built_in_backend_has_one_name_that_reads_back_as_itself(string name, Backend backend)
    {
        Assert.Equal(name, backend.Name);
        Assert.True(Backend.TryParse(name, out var read));
        Assert.Equal(backend, read);
    }

    [Theory]
    [InlineData("slurm")]
    [InlineData("gpu-pool-2")]
    [InlineData("a")]
    public void A_name_of_the_right_form_is_a_backend_a_host_may_have(string name)
    {
        Assert.True(Backend.TryParse(name, out var backend));
        Assert.Equal(name, backend.Name);
        Assert.Equal(Backend.Parse(name), backend);
    }

    [Theory]
    [InlineData("Local")]
    [InlineData("aws_batch")]
    [InlineData("")]
    [InlineData("-local")]
    [InlineData("local-")]
    [InlineData("9lives")]
    [InlineData("a b")]
    public void A_name_of_the_wrong_form_is_no_backend(string name) =>
        Assert.False(Backend.TryParse(name, out _));

    [Fact]
    public void A_name_longer_than_a_dns_label_is_no_backend() =>
        Assert.False(Backend.TryParse(new string('a', Backend.MaxNameLength + 1), out _));

    [Fact]
    public void A_default_backend_has_no_name_and_is_never_read_as_local() =>
        Assert.Throws<InvalidOperationException>(() => default(Backend).Name);

    [Fact]
    public void A_spec_naming_a_malformed_backend_is_invalid_at_spec_backend()
    {
        var result = BatchJobParser.Parse("""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: b}
            spec: {command: ["true"], backend: Slurm_2}
            """);

        Assert.False(result.IsValid);
        var only = Assert.Single(result.Errors);
        Assert.Equal("spec.backend", only.Path);
        Assert.Contains("\"Slurm_2\"", only.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_spec_naming_a_backend_no_host_ships_parses_and_needs_an_image()
    {
        var result = BatchJobParser.Parse("""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: b}
            spec: {command: ["true"], backend: slurm}
            """);

        Assert.Equal("spec.image: required for backend slurm", Assert.Single(result.Errors).ToString());
    }
}
