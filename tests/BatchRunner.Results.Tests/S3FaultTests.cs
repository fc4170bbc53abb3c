using System.Collections.Concurrent;
using System.Net;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Faults.Testing;
using BatchRunner.Results.Tests.Support;
using Xunit.Abstractions;
using ResultsWrapperExit = BatchRunner.Exec.ResultsWrapper;

namespace BatchRunner.Results.Tests;

/// <summary>
/// The fault tier for the results wrapper: indexes run as AWS Batch runs them (spec read from S3, output and ledger
/// row uploaded to it) while S3 (fauxqs) is reached through a fault proxy; a failed attempt is retried with the next
/// attempt number, as the backend's retry strategy does. Once the faults stop, every promise about the store is checked.
/// </summary>
[Collection(FaultsAlone.Name)]
public sealed class S3FaultTests(ITestOutputHelper output)
{
    private const int Indexes = 12;
    private const int MaxAttempts = 10;

    [Fact]
    public async Task Under_s3_faults_every_index_succeeds_exactly_once_with_its_ledger_row_and_output_and_nothing_is_left_half_written()
    {
        var (store, uri) = await S3Server.Shared.NewStoreAsync("faults");
        await using var proxy = FaultProxy.Start(new IPEndPoint(IPAddress.Loopback, new Uri(S3Server.Shared.Url).Port));
        var job = Wrapper.Job("echo \"{\\\"index\\\": $BATCHRUNNER_INDEX}\" > \"$BATCHRUNNER_OUTPUT_DIR/r.jsonl\"", $"completions: {Indexes}\nbackend: aws-batch\nimage: img");
        var runId = RunIdentity.For(job);
        await store.PutBytesAsync(StoreLayout.SpecKey("job", runId), System.Text.Encoding.UTF8.GetBytes(RunIdentity.SpecJson(job)), CancellationToken.None);
        var environment = S3Server.Shared.Environment();
        environment["BatchRunner__Results__EndpointUrl"] = $"http://127.0.0.1:{proxy.Port}";

        // Two at a time, each index until an attempt exits 0, while 30 s of faults (seeded) hit S3, 503 SlowDown and
        // 500 InternalError answers among them.
        var faults = FaultSchedule.RunAsync(proxy, TimeSpan.FromSeconds(30), seed: 33, answers: [HttpAnswer.S3SlowDown, HttpAnswer.S3InternalError]);
        var exits = new ConcurrentDictionary<int, List<int>>();
        var failures = new ConcurrentQueue<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, Indexes), new ParallelOptions { MaxDegreeOfParallelism = 2 }, async (index, cancellation) =>
        {
            var codes = exits.GetOrAdd(index, _ => []);
            for (var attempt = 1; attempt <= MaxAttempts; attempt++)
            {
                var attemptEnvironment = new Dictionary<string, string>(environment)
                {
                    ["AWS_BATCH_JOB_ARRAY_INDEX"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["BATCHRUNNER_INDEX_OFFSET"] = "0",
                    ["AWS_BATCH_JOB_ATTEMPT"] = attempt.ToString(System.Globalization.CultureInfo.InvariantCulture),
                };
                var result = await Wrapper.RunAsync(Wrapper.Arguments($"{uri}/{StoreLayout.SpecKey("job", runId)}", uri, job), attemptEnvironment);
                codes.Add(result.ExitCode);
                if (result.ExitCode != 0)
                {
                    failures.Enqueue($"index {index} attempt {attempt} exited {result.ExitCode}: {result.Stderr.Trim()}");
                }

                if (result.ExitCode == 0)
                {
                    return;
                }

                await Task.Delay(300, cancellation);
            }
        });
        await faults;
        output.WriteLine($"faults injected: {string.Join(", ", proxy.Injected.OrderBy(f => f.Key).Select(f => $"{f.Key} {f.Value}"))}; {proxy.Connections} connections");
        foreach (var failure in failures)
        {
            output.WriteLine(failure);
        }

        output.WriteLine("exit codes by index: " + string.Join("; ", exits.OrderBy(e => e.Key).Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));

        // The wrapper never crashed on a fault (it once aborted, 134, on a refused connection): it retried the store,
        // or said what failed with its own exit code (74: results not kept; 125: it could not start the attempt).
        Assert.All(exits.Values.SelectMany(codes => codes), code => Assert.Contains(code, new[] { 0, ResultsWrapperExit.UploadFailed, ResultsWrapperExit.WrapperError }));

        // Read back without faults: each index succeeded in exactly the attempt that exited 0, with its output.
        foreach (var (index, codes) in exits)
        {
            Assert.True(codes[^1] == 0, $"index {index} never succeeded in {MaxAttempts} attempts: {string.Join(" ", codes)}");
            var rows = new List<LedgerRow>();
            for (var attempt = 1; attempt <= codes.Count; attempt++)
            {
                if (await store.GetBytesAsync(StoreLayout.LedgerKey("job", runId, index, attempt), CancellationToken.None) is { } bytes)
                {
                    rows.Add(LedgerRow.FromJson(bytes));
                }
            }

            var succeeded = Assert.Single(rows, r => r.Status == "succeeded");
            Assert.Equal(codes.Count, succeeded.Attempt);
            var written = await store.GetBytesAsync($"{StoreLayout.OutputPrefix("job", runId, index, codes.Count)}/r.jsonl", CancellationToken.None);
            Assert.Equal($"{{\"index\": {index}}}\n", System.Text.Encoding.UTF8.GetString(written!));
        }

        Assert.True(proxy.Injected.Values.Sum() >= 10, "the schedule injected faults");
        Assert.True(proxy.Injected.GetValueOrDefault(FaultKind.Answered) > 0, "S3 answered with errors");
    }
}

/// <summary>Fault scenarios run alone: their bursts of processes and their ports must not be other tests' weather.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultsAlone
{
    public const string Name = "faults, alone";
}
