using System.CommandLine;
using BatchRunner.Core.Spec;
using System.Globalization;
using System.Text;
using Amazon.SQS.Model;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Sqs;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner submit SPEC... --queue URL</c>: sends BatchJob requests to the controller's SQS queue. Every spec
/// is checked first, as the intake will read it (the same parser, the same errors); if any is invalid nothing is
/// sent and the exit code is 2. Then they go ten to a SendMessageBatch call, and one message id is printed per
/// spec, in the order given. On a FIFO queue each spec's group is its namespace (one namespace's requests are
/// taken in order) and its deduplication id its content hash, unless given.
/// </summary>
public static class SubmitCommand
{
    /// <summary>SQS's largest message; the intake's own limit (<c>BatchRunner:Sqs:MaxBodyBytes</c>) is usually lower.</summary>
    private const int MaxMessageBytes = 1024 * 1024;

    /// <summary>A batch's bodies stay within what every SQS (and SQS-compatible server) takes in one call.</summary>
    private const int MaxBatchBytes = 256 * 1024;

    public static Command Create(TextWriter stdout, TextWriter stderr) => Create(stdout, stderr, SqsClientFactory.Create);

    /// <param name="connect">Makes the SQS client (tests put a counting or failing one here).</param>
    public static Command Create(TextWriter stdout, TextWriter stderr, Func<SqsConnection, ISqsClient> connect)
    {
        var specs = new Argument<string[]>("spec") { Description = "BatchJob files (YAML or JSON), or - for standard input", Arity = ArgumentArity.OneOrMore };
        var queue = new Option<string>("--queue") { Description = "The queue's URL", Required = true };
        var region = new Option<string?>("--region") { Description = "AWS region (default: AWS_REGION, the profile, …)" };
        var endpoint = new Option<string?>("--endpoint-url") { Description = "SQS endpoint (default: AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, or AWS's)" };
        var group = new Option<string?>("--group-id") { Description = "FIFO queues: the message group (default: each spec's namespace)" };
        var deduplication = new Option<string?>("--deduplication-id") { Description = "FIFO queues, one spec: the deduplication id (default: its content hash)" };
        var requestId = new Option<string?>("--request-id") { Description = "One spec: the BatchRunnerRequestId attribute, which names a spec without metadata.name" };
        var command = new Command("submit", "Send BatchJob specs to the controller's SQS queue; prints one message id per spec")
        {
            specs, queue, region, endpoint, group, deduplication, requestId,
        };
        command.SetAction(async (parsed, cancellation) =>
        {
            var paths = parsed.GetRequiredValue(specs);
            var settings = new Settings(
                parsed.GetRequiredValue(queue), parsed.GetValue(group), parsed.GetValue(deduplication), parsed.GetValue(requestId));
            if (paths.Length > 1 && (settings.DeduplicationId is not null || settings.RequestId is not null))
            {
                await stderr.WriteLineAsync("--deduplication-id and --request-id name one request: give one spec with them").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            var requests = await ReadAllAsync(paths, settings, stderr, cancellation).ConfigureAwait(false);
            if (requests is null)
            {
                return ExitCodes.InvalidInput;
            }

            var sqs = connect(new SqsConnection(parsed.GetValue(region), parsed.GetValue(endpoint)));
            try
            {
                return await SendAllAsync(sqs, settings, requests, stdout, stderr, cancellation).ConfigureAwait(false);
            }
            finally
            {
                (sqs as IDisposable)?.Dispose();
            }
        });
        return command;
    }

    private static async Task<List<Request>?> ReadAllAsync(string[] paths, Settings settings, TextWriter stderr, CancellationToken cancellation)
    {
        var requests = new List<Request>();
        var invalid = false;
        foreach (var path in paths)
        {
            var (text, error) = await ReadAsync(path, cancellation).ConfigureAwait(false);
            var errors = new List<string>();
            if (error is not null)
            {
                errors.Add(error);
            }
            else
            {
                // The intake's own reading, less its tenant guard (which only the controller knows).
                var read = IntakeRequestReader.Read(text, settings.RequestId, settings.Fifo ? settings.DeduplicationId : null, MaxMessageBytes);
                if (read.Rejection is { } rejection)
                {
                    errors.AddRange(rejection.Reason.Split('\n'));
                }
                else
                {
                    // Sent as JSON, as written: the intake reads JSON several times faster than YAML, and the document
                    // stays unresolved, so the consuming door's defaults (a cluster's backend) still apply.
                    requests.Add(new Request(path, BatchJobParser.ToJson(text!) ?? text!, read.Request!));
                    var bytes = Encoding.UTF8.GetByteCount(text!);
                    if (bytes > IntakeRequestReader.DefaultMaxBodyBytes)
                    {
                        await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                            $"{path}: warning: {bytes:N0} bytes; the intake refuses bodies over BatchRunner:Sqs:MaxBodyBytes (default {IntakeRequestReader.DefaultMaxBodyBytes:N0})")).ConfigureAwait(false);
                    }
                }
            }

            if (errors.Count > 0)
            {
                invalid = true;
                foreach (var line in errors)
                {
                    await stderr.WriteLineAsync($"{path}: {line}").ConfigureAwait(false);
                }

                await stderr.WriteLineAsync($"{path}: {errors.Count} error{(errors.Count == 1 ? "" : "s")}").ConfigureAwait(false);
            }
        }

        if (invalid)
        {
            await stderr.WriteLineAsync("nothing was sent").ConfigureAwait(false);
            return null;
        }

        return requests;
    }

    private static async Task<(string? Text, string? Error)> ReadAsync(string path, CancellationToken cancellation)
    {
        byte[] bytes;
        try
        {
            bytes = path == "-" ? await ReadStandardInputAsync(cancellation).ConfigureAwait(false) : await File.ReadAllBytesAsync(path, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, $"cannot read: {e.Message}");
        }

        if (bytes.Length > MaxMessageBytes)
        {
            return (null, string.Create(CultureInfo.InvariantCulture, $"{bytes.Length:N0} bytes, more than SQS's limit of {MaxMessageBytes:N0}"));
        }

        try
        {
            return (new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes), null);
        }
        catch (DecoderFallbackException)
        {
            return (null, "not UTF-8 text; the queue takes BatchJob documents as UTF-8");
        }
    }

    private static async Task<int> SendAllAsync(ISqsClient sqs, Settings settings, List<Request> requests, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var ids = new string?[requests.Count];
        var failed = 0;
        foreach (var batch in Batches(requests))
        {
            try
            {
                var response = await sqs.SendMessageBatchAsync(new SendMessageBatchRequest
                {
                    QueueUrl = settings.QueueUrl,
                    Entries = [.. batch.Select(i => Entry(i, requests[i], settings))],
                }, cancellation).ConfigureAwait(false);
                foreach (var sent in response.Successful ?? [])
                {
                    ids[int.Parse(sent.Id, CultureInfo.InvariantCulture)] = sent.MessageId;
                }

                foreach (var refused in response.Failed ?? [])
                {
                    failed++;
                    await stderr.WriteLineAsync($"{requests[int.Parse(refused.Id, CultureInfo.InvariantCulture)].Path}: not sent: {refused.Code}: {refused.Message}").ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                failed += batch.Count;
                foreach (var i in batch)
                {
                    await stderr.WriteLineAsync($"{requests[i].Path}: not sent: {e.Message}").ConfigureAwait(false);
                }
            }
        }

        foreach (var id in ids)
        {
            if (id is not null)
            {
                await stdout.WriteLineAsync(id).ConfigureAwait(false);
            }
        }

        return failed == 0 ? ExitCodes.Succeeded : ExitCodes.JobFailed;
    }

    /// <summary>Indexes of the requests, ten (or fewer, to stay under <see cref="MaxBatchBytes"/>) at a time, in order.</summary>
    private static IEnumerable<List<int>> Batches(List<Request> requests)
    {
        var batch = new List<int>();
        var bytes = 0;
        for (var i = 0; i < requests.Count; i++)
        {
            var size = Encoding.UTF8.GetByteCount(requests[i].Body);
            if (batch.Count == 10 || (batch.Count > 0 && bytes + size > MaxBatchBytes))
            {
                yield return batch;
                batch = [];
                bytes = 0;
            }

            batch.Add(i);
            bytes += size;
        }

        if (batch.Count > 0)
        {
            yield return batch;
        }
    }

    private static SendMessageBatchRequestEntry Entry(int index, Request request, Settings settings)
    {
        var entry = new SendMessageBatchRequestEntry { Id = index.ToString(CultureInfo.InvariantCulture), MessageBody = request.Body };
        if (settings.RequestId is { } id)
        {
            entry.MessageAttributes = new() { [RequestIdentity.RequestIdAttribute] = new MessageAttributeValue { DataType = "String", StringValue = id } };
        }

        if (settings.Fifo)
        {
            entry.MessageGroupId = settings.GroupId ?? request.Read.Job.Metadata.Namespace;

            // The content hash without its "sha256:" prefix: 64 characters, within SQS's 128.
            entry.MessageDeduplicationId = settings.DeduplicationId ?? request.Read.ContentHash["sha256:".Length..];
        }

        return entry;
    }

    private static async Task<byte[]> ReadStandardInputAsync(CancellationToken cancellation)
    {
        using var buffer = new MemoryStream();
        await using var input = Console.OpenStandardInput();
        await input.CopyToAsync(buffer, cancellation).ConfigureAwait(false);
        return buffer.ToArray();
    }

    private sealed record Settings(string QueueUrl, string? GroupId, string? DeduplicationId, string? RequestId)
    {
        public bool Fifo => QueueUrl.EndsWith(".fifo", StringComparison.Ordinal);
    }

    private sealed record Request(string Path, string Body, IntakeRequest Read);
}
