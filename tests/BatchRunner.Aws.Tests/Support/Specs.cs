namespace BatchRunner.Aws.Tests.Support;

/// <summary>BatchJob documents for the tests: valid ones run /bin/sh, which the test tenants allow.</summary>
public static class Specs
{
    public const string AllowedCommand = "/bin/sh";

    public static string Yaml(string? name, string ns = "default", string script = "true", string extraSpec = "")
    {
        var metadata = name is null ? $"metadata: {{namespace: {ns}}}" : $"metadata: {{name: {name}, namespace: {ns}}}";
        return $"""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            {metadata}
            spec:
              command: ["{AllowedCommand}", "-c", "{script}"]
            {(extraSpec.Length == 0 ? "" : "  " + extraSpec)}
            """;
    }

    public static string Json(string name, string ns = "default", string script = "true") =>
        "{\"apiVersion\":\"batchrunner.io/v1alpha1\",\"kind\":\"BatchJob\",\"metadata\":{\"name\":\"" + name + "\",\"namespace\":\"" + ns +
        "\"},\"spec\":{\"command\":[\"" + AllowedCommand + "\",\"-c\",\"" + script + "\"]}}";
}
