using BatchRunner.Aws.Protocol;

namespace BatchRunner.Aws.Tests.Protocol;

public sealed class AwsEndpointResolverTests
{
    private static readonly AwsServiceOptions Batch = new() { ServiceId = "batch", SigningName = "batch", Region = "eu-west-1" };

    private static Func<string, string?> Env(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Without_overrides_the_public_endpoint_of_the_region_is_used()
    {
        Assert.Equal(new Uri("https://batch.eu-west-1.amazonaws.com"), AwsEndpointResolver.Resolve(Batch, Env()).Url);
        Assert.Equal(new Uri("https://batch.cn-north-1.amazonaws.com.cn"), AwsEndpointResolver.Resolve(Batch with { Region = "cn-north-1" }, Env()).Url);
        Assert.Equal("eu-west-1", AwsEndpointResolver.Resolve(Batch, Env()).Region);
    }

    [Fact]
    public void The_service_variable_wins_over_the_general_one_and_the_setting_over_both()
    {
        var env = Env(("AWS_ENDPOINT_URL_BATCH", "http://127.0.0.1:1234"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"));
        Assert.Equal(new Uri("http://127.0.0.1:1234"), AwsEndpointResolver.Resolve(Batch, env).Url);
        Assert.Equal(new Uri("http://127.0.0.1:9"), AwsEndpointResolver.Resolve(Batch, Env(("AWS_ENDPOINT_URL", "http://127.0.0.1:9"))).Url);
        Assert.Equal(new Uri("http://127.0.0.1:9"), AwsEndpointResolver.Resolve(Batch with { ServiceId = "athena" }, env).Url);
        Assert.Equal(new Uri("http://localhost:7"), AwsEndpointResolver.Resolve(Batch with { EndpointUrl = "http://localhost:7" }, env).Url);
    }

    [Fact]
    public void Configured_endpoints_can_be_ignored_as_with_the_aws_cli()
    {
        var env = Env(("AWS_ENDPOINT_URL_BATCH", "http://127.0.0.1:1234"), ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"));
        Assert.Equal(new Uri("https://batch.eu-west-1.amazonaws.com"), AwsEndpointResolver.Resolve(Batch, env).Url);
    }

    [Fact]
    public void A_malformed_endpoint_is_refused_naming_it()
    {
        var e = Assert.Throws<AwsConfigurationException>(() => AwsEndpointResolver.Resolve(Batch with { EndpointUrl = "batch.example" }, Env()));
        Assert.Contains("'batch.example'", e.Message, StringComparison.Ordinal);
    }
}
