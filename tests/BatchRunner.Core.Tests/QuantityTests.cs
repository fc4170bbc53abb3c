using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Tests;

public class QuantityTests
{
    [Theory]
    [InlineData("500m", 500)]
    [InlineData("2", 2000)]
    [InlineData("0.5", 500)]
    [InlineData("1", 1000)]
    [InlineData("0.25", 250)]
    [InlineData("1.5m", 2)] // fractions of a millicore round up
    [InlineData("1m", 1)]
    [InlineData("1000", 1_000_000)]
    public void Valid_cpu_quantities_parse_to_millicores(string text, long expected)
    {
        Assert.True(Quantity.TryParseMilliCpu(text, out var milliCpu, out var error), error);
        Assert.Equal(expected, milliCpu);
        Assert.Equal("", error);
    }

    [Theory]
    [InlineData("abc", "must be cores or millicores such as \"2\", \"0.5\" or \"500m\", got \"abc\"")]
    [InlineData("", "must be cores or millicores such as \"2\", \"0.5\" or \"500m\", got \"\"")]
    [InlineData("-1", "must be cores or millicores such as \"2\", \"0.5\" or \"500m\", got \"-1\"")]
    [InlineData("2Gi", "must be cores or millicores such as \"2\", \"0.5\" or \"500m\", got \"2Gi\"")]
    [InlineData("500M", "must be cores or millicores such as \"2\", \"0.5\" or \"500m\", got \"500M\"")]
    [InlineData("1 ", "must be cores or millicores such as \"2\", \"0.5\" or \"500m\", got \"1 \"")]
    [InlineData("0", "must be between 1m and 1000 cores, got \"0\"")]
    [InlineData("0m", "must be between 1m and 1000 cores, got \"0m\"")]
    [InlineData("0.5m", "must be between 1m and 1000 cores, got \"0.5m\"")]
    [InlineData("1001", "must be between 1m and 1000 cores, got \"1001\"")]
    public void Invalid_cpu_quantities_are_rejected_with_a_reason(string text, string expected)
    {
        Assert.False(Quantity.TryParseMilliCpu(text, out var milliCpu, out var error));
        Assert.Equal(expected, error);
        Assert.Equal(0, milliCpu);
    }

    [Theory]
    [InlineData("512Mi", 512L << 20)]
    [InlineData("4Gi", 4L << 30)]
    [InlineData("1G", 1_000_000_000)]
    [InlineData("1Mi", 1L << 20)]
    [InlineData("1024Ki", 1L << 20)]
    [InlineData("1.5Gi", 3L << 29)]
    [InlineData("2M", 2_000_000)]
    [InlineData("2Ti", 2L << 40)]
    [InlineData("1Pi", 1L << 50)]
    [InlineData("1048576", 1L << 20)]
    public void Valid_memory_quantities_parse_to_bytes(string text, long expected)
    {
        Assert.True(Quantity.TryParseBytes(text, out var bytes, out var error), error);
        Assert.Equal(expected, bytes);
        Assert.Equal("", error);
    }

    [Theory]
    [InlineData("512m", "\"512m\" is millibytes; did you mean \"512Mi\"?")]
    [InlineData("1.5m", "\"1.5m\" is millibytes; did you mean \"1.5Mi\"?")]
    [InlineData("abc", "must be bytes with an optional suffix (Ki, Mi, Gi, Ti, k, M, G, T) such as \"512Mi\", got \"abc\"")]
    [InlineData("1Ei", "must be bytes with an optional suffix (Ki, Mi, Gi, Ti, k, M, G, T) such as \"512Mi\", got \"1Ei\"")]
    [InlineData("1gi", "must be bytes with an optional suffix (Ki, Mi, Gi, Ti, k, M, G, T) such as \"512Mi\", got \"1gi\"")]
    [InlineData("-1Gi", "must be bytes with an optional suffix (Ki, Mi, Gi, Ti, k, M, G, T) such as \"512Mi\", got \"-1Gi\"")]
    [InlineData("0", "must be between 1Mi and 1Pi, got \"0\"")]
    [InlineData("1000k", "must be between 1Mi and 1Pi, got \"1000k\"")]
    [InlineData("2Pi", "must be between 1Mi and 1Pi, got \"2Pi\"")]
    public void Invalid_memory_quantities_are_rejected_with_a_reason(string text, string expected)
    {
        Assert.False(Quantity.TryParseBytes(text, out var bytes, out var error));
        Assert.Equal(expected, error);
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void Numbers_written_without_quotes_are_quantities_too()
    {
        var resources = Specs.Valid(Specs.Yaml("  resources: {cpu: 0.5, memory: 1073741824}\n")).Spec.Resources;

        Assert.Equal(new ResourceRequests("0.5", "1073741824", 500, 1L << 30), resources);
    }

    [Fact]
    public void Giving_only_cpu_keeps_the_default_memory()
    {
        var resources = Specs.Valid(Specs.Yaml("  resources: {cpu: 250m}\n")).Spec.Resources;

        Assert.Equal(new ResourceRequests("250m", "2Gi", 250, 2L << 30), resources);
    }
}
