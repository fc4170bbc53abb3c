using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BatchRunner.Aws.Tests.Protocol;

/// <summary>
/// botocore as the reference for requests our AWS clients send: <c>tests/botocore/check.py</c> validates bodies
/// against the official API models and signs requests with <c>SigV4Auth</c>. One python process per batch of
/// cases. <c>tests/botocore/install.sh</c> (run by tests/run.sh) installs Debian's python3-botocore.
/// </summary>
public static class Botocore
{
    private static readonly string Script = Path.Combine(RepoRoot(), "tests", "botocore", "check.py");

    // Debian's interpreter, which python3-botocore installs into; a python3 earlier on PATH may carry another botocore.
    private static readonly string Python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    /// <summary>botocore's report for each body ("" when valid) and the operation's HTTP binding.</summary>
    public static async Task<IReadOnlyList<(string Errors, string Method, string RequestUri)>> ValidateAsync(
        string service, IEnumerable<(string Operation, string Body)> requests)
    {
        var cases = new JsonArray();
        foreach (var (operation, body) in requests)
        {
            cases.Add(new JsonObject { ["kind"] = "validate", ["service"] = service, ["operation"] = operation, ["body"] = JsonNode.Parse(body) });
        }

        var results = await RunAsync(cases).ConfigureAwait(false);
        return results.Select(r => (
            r!["errors"]!.GetValue<string>(),
            r["http"]!["method"]!.GetValue<string>(),
            r["http"]!["requestUri"]!.GetValue<string>())).ToList();
    }

    /// <summary>The Authorization header botocore computes for a request with these headers and body at <paramref name="timestamp"/>.</summary>
    public static async Task<string> SignAsync(
        string method, Uri url, IReadOnlyDictionary<string, string> headers, string body,
        string accessKey, string secretKey, string? token, string region, string service, string timestamp)
    {
        var headerObject = new JsonObject();
        foreach (var (name, value) in headers)
        {
            headerObject[name] = value;
        }

        var cases = new JsonArray
        {
            new JsonObject
            {
                ["kind"] = "sign", ["method"] = method, ["url"] = url.AbsoluteUri, ["headers"] = headerObject, ["body"] = body,
                ["accessKey"] = accessKey, ["secretKey"] = secretKey, ["token"] = token, ["region"] = region,
                ["service"] = service, ["timestamp"] = timestamp,
            },
        };
        var results = await RunAsync(cases).ConfigureAwait(false);
        return results[0]!["authorization"]!.GetValue<string>();
    }

    private static async Task<JsonArray> RunAsync(JsonArray cases)
    {
        var start = new ProcessStartInfo(Python, [Script])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("python3 did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(new JsonObject { ["cases"] = cases }.ToJsonString()).ConfigureAwait(false);
        process.StandardInput.Close();
        await process.WaitForExitAsync().ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"tests/botocore/check.py failed ({process.ExitCode}): {await error.ConfigureAwait(false)}");
        }

        return JsonNode.Parse(await output.ConfigureAwait(false))!["results"]!.AsArray();
    }

    public static string RepoRoot() => BatchRunner.Results.Tests.Support.CliProcess.RepoRoot;

    /// <summary>The signed headers named in an Authorization header, with the values a request carried.</summary>
    public static IReadOnlyDictionary<string, string> SignedHeaders(string authorization, ReceivedRequest request)
    {
        var list = authorization.Split("SignedHeaders=")[1].Split(',')[0].Split(';');
        return list.ToDictionary(h => h, h => request.Header(h) ?? throw new InvalidOperationException($"signed header {h} not received"));
    }

    internal static JsonSerializerOptions Indented { get; } = new() { WriteIndented = true };
}
