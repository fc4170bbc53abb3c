using System.Diagnostics;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.SQS;

namespace BatchRunner.Operator.Tests;

/// <summary>fauxqs (an SQS emulator, installed by tests/run.sh) on 127.0.0.1, for the queue door into the cluster.</summary>
public sealed class QueueEmulator : IAsyncDisposable
{
    private readonly Process _process;

    private QueueEmulator(Process process, string url)
    {
        _process = process;
        Url = url;
        Client = new AmazonSQSClient(
            new BasicAWSCredentials("batchrunner-test", "batchrunner-test-secret"),
            new AmazonSQSConfig { ServiceURL = url, AuthenticationRegion = Region });
    }

    public const string Region = "us-east-1";

    public string Url { get; }

    public AmazonSQSClient Client { get; }

    /// <summary>The environment a process needs to reach the emulator and nothing else (no profile, no instance metadata).</summary>
    public static IReadOnlyDictionary<string, string> AwsEnvironment { get; } = new Dictionary<string, string>
    {
        ["AWS_ACCESS_KEY_ID"] = "batchrunner-test",
        ["AWS_SECRET_ACCESS_KEY"] = "batchrunner-test-secret",
        ["AWS_REGION"] = Region,
        ["AWS_EC2_METADATA_DISABLED"] = "true",
        ["AWS_CONFIG_FILE"] = "/nonexistent/batchrunner-test/config",
        ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/batchrunner-test/credentials",
    };

    public static async Task<QueueEmulator> StartAsync()
    {
        var start = new ProcessStartInfo("node", ["tests/fauxqs/server.mjs"])
        {
            WorkingDirectory = OperatorFixture.RepoRoot,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(start)!;
        // One line, {"url": "..."}, once it listens; if node_modules is missing it says so on stderr and exits.
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30))
            ?? throw new InvalidOperationException("fauxqs did not start (run tests/run.sh to install it): " + await process.StandardError.ReadToEndAsync());
        return new QueueEmulator(process, JsonDocument.Parse(line).RootElement.GetProperty("url").GetString()!);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        // Closing its standard input stops it.
        _process.StandardInput.Close();
        if (!_process.WaitForExit(TimeSpan.FromSeconds(5)))
        {
            _process.Kill();
        }

        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
