using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using BatchRunner.Aws.Protocol;

namespace BatchRunner.Aws.Tests.Protocol;

/// <summary>
/// The client's wire options plus reflection for the tests' own request and answer types (the product's options
/// resolve only the generated contexts' types; reflection is fine in tests, which are not published as Native AOT).
/// </summary>
internal static class TestWireJson
{
    public static JsonSerializerOptions CamelCase() => WithReflection(AwsJsonClient.CamelCaseJson());

    public static JsonSerializerOptions PascalCase() => WithReflection(AwsJsonClient.PascalCaseJson());

    private static JsonSerializerOptions WithReflection(JsonSerializerOptions wire)
    {
        var options = new JsonSerializerOptions(wire);
        options.TypeInfoResolverChain.Add(new DefaultJsonTypeInfoResolver());
        options.Converters.Add(new JsonStringEnumConverter());
        return options;
    }
}
