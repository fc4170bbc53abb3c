using System.Diagnostics;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.SQS;
using Amazon.SQS.Model;
using BatchRunner.Aws.Sqs;

namespace BatchRunner.Aws.Tests.Support;

/// <summary>
/// fauxqs, the SQS emulator, started from tests/fauxqs/server.mjs on a free port of 127.0.0.1: once for the whole
/// test run, shared by every test (each uses queues of its own). It is stopped when the test process exits, and
/// stops by itself if the process dies, since its standard input then closes.
/// </summary>
public sealed class Fauxqs : IDisposable
{
    private static readonly Lazy<Fauxqs> SharedServer = new(() => new Fauxqs());
    private readonly Process _process;

    private Fauxqs()
    {
        var folder = Path.Combine(RepoRoot, "tests", "fauxqs");
        if (!Directory.Exists(Path.Combine(folder, "node_modules", "fauxqs")))
        {
            throw new InvalidOperationException(
                $"fauxqs is not installed in {folder}: run `npm ci --prefix tests/fauxqs` (tests/run.sh does) before these tests");
        }

        var start = new ProcessStartInfo("node", [Path.Combine(folder, "server.mjs")])
        {
            WorkingDirectory = folder,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
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
        if (!Url.StartsWith("http://127.0.0.1:", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"fauxqs must listen on 127.0.0.1 only, it says {Url}");
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => Dispose();
    }

    /// <summary>The one server of this test run.</summary>
    public static Fauxqs Shared => SharedServer.Value;

    public const string Region = "us-east-1";

    /// <summary>The node process, for a benchmark that measures its CPU time.</summary>
    public int ProcessId => _process.Id;

    /// <summary>http://127.0.0.1:PORT</summary>
    public string Url { get; }

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The SDK's own client for this server: what the intake uses, through <see cref="SqsClientFactory"/>.</summary>
    public AwsSqsClient Client() => SqsClientFactory.Create(new SqsConnection(Region, Url));

    public async Task<string> CreateQueueAsync(string name, Dictionary<string, string>? attributes = null)
    {
        using var client = Client();
        var response = await client.Sdk.CreateQueueAsync(new CreateQueueRequest { QueueName = name, Attributes = attributes ?? [] }).ConfigureAwait(false);
        return response.QueueUrl;
    }

    /// <summary>A queue and its dead-letter queue, with unique names; FIFO when asked.</summary>
    public async Task<(string Queue, string DeadLetter)> CreateQueuePairAsync(bool fifo = false, [CallerMemberName] string test = "")
    {
        var stem = $"{new string(test.Where(char.IsLetterOrDigit).Take(40).ToArray())}-{Guid.NewGuid():N}"[..50];
        var suffix = fifo ? ".fifo" : "";
        Dictionary<string, string> kind = fifo ? new() { ["FifoQueue"] = "true" } : [];
        var deadLetter = await CreateQueueAsync($"{stem}-dlq{suffix}", kind).ConfigureAwait(false);
        var queue = await CreateQueueAsync($"{stem}{suffix}", kind).ConfigureAwait(false);
        return (queue, deadLetter);
    }

    /// <summary>Visible and in-flight messages of a queue, read without receiving anything.</summary>
    public async Task<(int Visible, int InFlight)> CountAsync(string queueUrl)
    {
        using var client = Client();
        var response = await client.Sdk.GetQueueAttributesAsync(new GetQueueAttributesRequest
        {
            QueueUrl = queueUrl,
            AttributeNames = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
        }).ConfigureAwait(false);
        return (int.Parse(response.Attributes["ApproximateNumberOfMessages"], System.Globalization.CultureInfo.InvariantCulture)
                + int.Parse(response.Attributes.GetValueOrDefault("ApproximateNumberOfMessagesDelayed", "0"), System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(response.Attributes["ApproximateNumberOfMessagesNotVisible"], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Every message of a (dead-letter) queue, received and deleted, with all attributes.</summary>
    public async Task<List<Message>> DrainAsync(string queueUrl)
    {
        using var client = Client();
        var messages = new List<Message>();
        while (true)
        {
            var response = await client.Sdk.ReceiveMessageAsync(new ReceiveMessageRequest
            {
                QueueUrl = queueUrl,
                MaxNumberOfMessages = 10,
                WaitTimeSeconds = 0,
                MessageAttributeNames = ["All"],
                MessageSystemAttributeNames = ["All"],
            }).ConfigureAwait(false);
            if (response.Messages is not { Count: > 0 } received)
            {
                return messages;
            }

            messages.AddRange(received);
            foreach (var message in received)
            {
                await client.Sdk.DeleteMessageAsync(queueUrl, message.ReceiptHandle).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Sends a body given as raw bytes inside the JSON request, as a producer with a broken encoder would: bytes
    /// that are not UTF-8 reach the queue (and so the consumer) as U+FFFD.
    /// </summary>
    public async Task<string> SendRawAsync(string queueUrl, byte[] body, string? groupId = null)
    {
        using var http = new HttpClient();
        var prefix = $"{{\"QueueUrl\":{JsonSerializer.Serialize(queueUrl)},{(groupId is null ? "" : $"\"MessageGroupId\":\"{groupId}\",\"MessageDeduplicationId\":\"{Guid.NewGuid():N}\",")}\"MessageBody\":\"";
        // ASCII is escaped as JSON needs; every byte from 0x80 up goes raw, valid UTF-8 or not.
        var escaped = body.SelectMany(b => b is < 0x20 or (byte)'"' or (byte)'\\' ? Encoding.ASCII.GetBytes($"\\u{b:x4}") : [b]);
        var payload = Encoding.UTF8.GetBytes(prefix).Concat(escaped).Concat("\"}"u8.ToArray()).ToArray();
        using var content = new ByteArrayContent(payload);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/x-amz-json-1.0");
        using var request = new HttpRequestMessage(HttpMethod.Post, Url) { Content = content };
        request.Headers.Add("X-Amz-Target", "AmazonSQS.SendMessage");
        using var response = await http.SendAsync(request).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"raw SendMessage failed: {(int)response.StatusCode} {text}");
        }

        return JsonDocument.Parse(text).RootElement.GetProperty("MessageId").GetString()!;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                // Closing its standard input is how server.mjs is asked to stop.
                _process.StandardInput.Close();
                if (!_process.WaitForExit(5_000))
                {
                    _process.Kill(entireProcessTree: true);
                }
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    private static string FindRepoRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "BatchRunner.sln")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException($"no BatchRunner.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>The AWS settings of the test process: fake credentials, a region, and nothing read from ~/.aws or instance metadata.</summary>
internal static class TestAwsEnvironment
{
    [ModuleInitializer]
    internal static void Initialize()
    {
        // Only fauxqs on 127.0.0.1 is ever contacted: credentials come from here, never from a profile or IMDS.
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "batchrunner-test");
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "batchrunner-test-secret");
        Environment.SetEnvironmentVariable("AWS_REGION", Fauxqs.Region);
        Environment.SetEnvironmentVariable("AWS_EC2_METADATA_DISABLED", "true");
        Environment.SetEnvironmentVariable("AWS_CONFIG_FILE", "/nonexistent/batchrunner-test/config");
        Environment.SetEnvironmentVariable("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/batchrunner-test/credentials");
        Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", null);
        Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL_SQS", null);
    }
}
