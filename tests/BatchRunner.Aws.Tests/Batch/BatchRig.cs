using Amazon.Runtime;
using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Protocol;
using BatchRunner.Core.Spec;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>The dispatcher against a <see cref="StubBatchServer"/>: client, options, a folder store, a fake clock.</summary>
public sealed class BatchRig : IAsyncDisposable
{
    public const string Queue = "batchrunner";
    public const string SpotQueue = "batchrunner-spot";
    public const string ExecutionRole = "arn:aws:iam::123456789012:role/batchrunner-execution";

    private readonly string _root = Directory.CreateTempSubdirectory("batchrunner-awsbatch-").FullName;

    private BatchRig(StubBatchServer server) => Server = server;

    public StubBatchServer Server { get; }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));

    public string Store => Path.Combine(_root, "store");

    public BatchApiClient Api { get; private set; } = null!;

    public SubmitRateLimiter Limiter { get; } = new(50);

    /// <summary>The fault proxy between the dispatcher and the stub, when started <c>throughProxy</c>.</summary>
    public BatchRunner.Faults.Testing.FaultProxy? Proxy { get; private set; }

    public static async Task<BatchRig> StartAsync(bool throughProxy = false)
    {
        var rig = new BatchRig(await StubBatchServer.StartAsync());
        rig.Proxy = throughProxy ? BatchRunner.Faults.Testing.FaultProxy.Start(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, rig.Server.Url.Port)) : null;
        rig.Api = new BatchApiClient(new AwsJsonClient(
            BatchApiClient.ServiceOptions("us-east-1", rig.Proxy is { } proxy ? $"http://127.0.0.1:{proxy.Port}/" : rig.Server.Url.ToString()) with
            {
                RetryBaseDelay = TimeSpan.FromMilliseconds(1), MaxRetryDelay = TimeSpan.FromMilliseconds(10), MaxAttempts = 6,
            },
            AwsJsonClient.CamelCaseJson(),
            credentials: new StaticAwsCredentialSource(new ImmutableCredentials("AKIDEXAMPLE", "secret", null))));
        return rig;
    }

    public AwsBatchOptions Options(Func<AwsBatchOptions, AwsBatchOptions>? change = null)
    {
        var options = new AwsBatchOptions
        {
            Enabled = true, JobQueue = Queue, SpotJobQueue = SpotQueue, ExecutionRoleArn = ExecutionRole,
            JobRoleArn = "arn:aws:iam::123456789012:role/batchrunner-job", LogGroup = "/batchrunner/jobs", DefaultResultsUri = Store,
        };
        return change is null ? options : change(options);
    }

    public AwsBatchDispatcher Dispatcher(AwsBatchOptions? options = null) =>
        new(Api, options ?? Options(), new BatchRunner.Aws.S3.StoreRunSpecPublisher(new BatchRunner.Aws.S3.ResultsOptions(), path => new BatchRunner.Store.LocalResultsStore(path)), Limiter, Time, NullLogger<AwsBatchDispatcher>.Instance,
            new AwsBatchTimings(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(60), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(10)));

    public static BatchJob Job(string name = "sweep", string extra = "", string metadata = "") =>
        BatchJobParser.Parse($$"""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: {{name}}, namespace: team-a{{metadata}}}
            spec:
              image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/mmc-queue:1
              command: [dotnet, mmc-queue.dll]
              args: [--fast]
              env: [{name: LOG_LEVEL, value: debug}]
              backend: aws-batch
            {{extra}}
            """).GetJobOrThrow();

    /// <summary>Calls the dispatcher until the run ends (at most <paramref name="rounds"/> calls), keeping its state.</summary>
    /// <param name="allowance">What the run's queue admits on each round (its number), null for its parallelism.</param>
    public static async Task<AwsBatchProgress> RunToEndAsync(
        AwsBatchDispatcher dispatcher, BatchJob job, AwsBatchRunState? state = null, int rounds = 200, Action<AwsBatchProgress>? each = null, Func<int, int?>? allowance = null)
    {
        var runId = Core.Runs.RunIdentity.For(job);
        AwsBatchProgress progress = null!;
        for (var round = 0; round < rounds; round++)
        {
            progress = await dispatcher.AdvanceAsync(job, runId, state, null, allowSubmit: true, allowance: allowance?.Invoke(round), default);
            each?.Invoke(progress);
            state = progress.State;
            if (progress.IsTerminal || progress.Problem is not null)
            {
                return progress;
            }
        }

        return progress;
    }

    public async ValueTask DisposeAsync()
    {
        Api.Dispose();
        Limiter.Dispose();
        if (Proxy is not null)
        {
            await Proxy.DisposeAsync();
        }

        await Server.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }
}
