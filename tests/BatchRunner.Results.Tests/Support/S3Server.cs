using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Amazon.S3;
using BatchRunner.Aws.S3;
using BatchRunner.Core.Store;

namespace BatchRunner.Results.Tests.Support;

/// <summary>
/// fauxqs (which serves S3 on the same port as SQS) from tests/fauxqs/server.mjs on a free port of 127.0.0.1,
/// once per test run; each test uses a bucket of its own. It stops when the test process exits, and by itself
/// if the process dies (its standard input closes).
/// </summary>
public sealed class S3Server : IDisposable
{
    private static readonly Lazy<S3Server> SharedServer = new(() => new S3Server());
    private readonly Process _process;

    public const string Region = "us-east-1";

    private S3Server()
    {
        var folder = Path.Combine(RepoRoot, "tests", "fauxqs");
        if (!Directory.Exists(Path.Combine(folder, "node_modules", "fauxqs")))
        {
            throw new InvalidOperationException($"fauxqs is not installed in {folder}: run `npm ci --prefix tests/fauxqs` (tests/run.sh does) first");
        }

        _process = Process.Start(new ProcessStartInfo("node", [Path.Combine(folder, "server.mjs")])
        {
            WorkingDirectory = folder,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        }) ?? throw new InvalidOperationException("node did not start");
        var stderr = new StringBuilder();
        _process.ErrorDataReceived += (_, e) =>
        {
            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }
        };
        _process.BeginErrorReadLine();
        var line = _process.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromSeconds(30)) || line.Result is null)
        {
            _process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"fauxqs did not start within 30 s: {stderr}");
        }

        Url = JsonDocument.Parse(line.Result).RootElement.GetProperty("url").GetString()!;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Dispose();
    }

    public static S3Server Shared => SharedServer.Value;

    /// <summary>http://127.0.0.1:PORT</summary>
    public string Url { get; }

    public static string RepoRoot => CliProcess.RepoRoot;

    /// <summary>Settings as a deployment gives them: region, endpoint, path-style addressing.</summary>
    public ResultsOptions Options(string uri, long partSize = ResultsOptions.MinPartSizeBytes) =>
        new() { Uri = uri, Region = Region, EndpointUrl = Url, ForcePathStyle = true, PartSizeBytes = partSize };

    /// <summary>Variables that point the wrapper (a child process) at this server with throwaway credentials.</summary>
    public Dictionary<string, string> Environment() => new(StringComparer.Ordinal)
    {
        ["BatchRunner__Results__Region"] = Region,
        ["BatchRunner__Results__EndpointUrl"] = Url,
        ["BatchRunner__Results__ForcePathStyle"] = "true",
        ["BatchRunner__Results__PartSizeBytes"] = ResultsOptions.MinPartSizeBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["AWS_ACCESS_KEY_ID"] = "test",
        ["AWS_SECRET_ACCESS_KEY"] = "test",
        ["AWS_REGION"] = Region,
    };

    /// <summary>A new bucket and a store on a prefix of it.</summary>
    public async Task<(S3ResultsStore Store, string Uri)> NewStoreAsync(string prefix = "results", long partSize = ResultsOptions.MinPartSizeBytes)
    {
        var bucket = "t" + Guid.NewGuid().ToString("N")[..20];
        using (var client = Client())
        {
            await client.PutBucketAsync(bucket);
        }

        var uri = $"s3://{bucket}/{prefix}";
        return (S3ResultsStore.Create(Options(uri, partSize), StoreUri.Parse(uri)), uri);
    }

    public AmazonS3Client Client()
    {
        System.Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "test");
        System.Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "test");
        return S3ResultsStore.CreateClient(Options("s3://x"));
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}
