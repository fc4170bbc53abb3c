using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Aws.Intake;
using BatchRunner.Core.Spec;
using BatchRunner.Aws.Tests.Support;

namespace BatchRunner.Aws.Tests;

/// <summary>
/// JSON bodies are read by System.Text.Json and bound by the parser's own binder; that must never accept what the
/// CLI's reading refuses, nor read a value differently, nor word an error differently.
/// </summary>
public sealed class JsonFastPathTests
{
    private const string Head = "\"apiVersion\":\"batchrunner.io/v1alpha1\",\"kind\":\"BatchJob\",\"metadata\":{\"name\":\"j\"}";

    public static TheoryData<string> Documents()
    {
        var data = new TheoryData<string>();
        foreach (var path in Directory.GetFiles(Path.Combine(Fauxqs.RepoRoot, "manifests", "examples"), "*.yaml"))
        {
            if (IntakeRequestReader.Read(File.ReadAllText(path), null, null).Request is { } request)
            {
                data.Add(request.Document);
                data.Add(JsonNode.Parse(request.Document)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
        }

        foreach (var spec in new[]
        {
            "\"command\":[\"/bin/sh\"],\"parallelism\":1.0,\"timeoutSeconds\":1.5e2,\"deadlineSeconds\":1E3",
            "\"command\":[\"/bin/sh\"],\"sweep\":{\"grid\":{\"a\":[-0,1E3,0.1,1e-2,\"\\u00e9\",\"a\\/b\",true,\"null\",\"5\"]},\"seed\":9007199254740993}",
            "\"command\":[\"/bin/sh\"],\"sweep\":{\"list\":[{\"x\":12345678901234567890},{\"x\":2.5}]},\"env\":[{\"name\":\"A\",\"value\":\"tab\\there\"}]",
            "\"command\":[\"/bin/sh\"],\"resources\":{\"cpu\":2,\"memory\":\"1Gi\"},\"image\":null",
            "\"command\":[\"/bin/sh\"],\"parallelism\":0",
            "\"command\":[\"/bin/sh\"],\"parallelism\":1,\"parallelism\":2",
            "\"command\":[\"/bin/sh\"],\"timeoutSeconds\":\"1e400\"",
            "\"command\":[\"/bin/sh\"],\"args\":[5]",
            "\"command\":\"/bin/sh\"",
        })
        {
            data.Add($"{{{Head},\"spec\":{{{spec}}}}}");
        }

        data.Add("{" + Head + ",\"spec\":{\"command\":[\"/bin/sh\"]}} # a YAML comment after the JSON");
        data.Add("{" + Head + ",\"spec\":{\"command\":[\"/bin/sh\"],}}");
        data.Add("{\"kind\":\"BatchJob\"");
        return data;
    }

    [Theory]
    [MemberData(nameof(Documents))]
    public void A_json_body_reads_as_the_cli_reads_it(string document)
    {
        var fast = IntakeRequestReader.Parse(document, jsonFastPath: true);
        var cli = IntakeRequestReader.Parse(document, jsonFastPath: false);

        Assert.Equal(cli.Errors, fast.Errors);
        Assert.Equal(cli.IsValid, fast.IsValid);
        if (cli.IsValid)
        {
            Assert.Equal(BatchJobDocument.Write(cli.Job!), BatchJobDocument.Write(fast.Job!));
        }
    }
}
