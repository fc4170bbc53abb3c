using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Backends;
using BatchRunner.Controller;
using BatchRunner.Controller.Hosting;
using BatchRunner.Controller.Intake;
using BatchRunner.Backends.Scheduling;
using BatchRunner.Core.Scheduling;
using BatchRunner.Local.Intake;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BatchRunner.Aws.Tests;

/// <summary>The runner of local submissions: runs them with the local backend, and resumes what a stopped runner left.</summary>
public sealed class LocalSubmissionRunnerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("batchrunner-runner-").FullName;

    private LocalIntakeOptions Options => new() { StoreRoot = Path.Combine(_root, "store"), WorkingDirectory = _root, PollIntervalSeconds = 1 };

    private async Task<SubmissionRecord> RecordAsync(SubmissionStore store, string name, string script)
    {
        var request = IntakeRequestReader.Read(Specs.Yaml(name, script: script, extraSpec: "completions: 3"), null, null).Request!;
        await store.RecordAsync(new Submission("default", name, request.ContentHash, request.Document, "test"));
        return store.Find("default", name)!;
    }

    private LocalSubmissionRunner Runner(SubmissionStore store, params IBatchBackend[] registered) => Runner(store, null, registered);

    private LocalSubmissionRunner Runner(SubmissionStore store, IDictionary<string, string?>? configuration, params IBatchBackend[] registered)
    {
        var services = new ServiceCollection().AddSingleton(store).BuildServiceProvider();
        var kubernetes = Microsoft.Extensions.Options.Options.Create(new KubernetesOptions { Enabled = false });
        return new LocalSubmissionRunner(services, kubernetes, Microsoft.Extensions.Options.Options.Create(Options),
            new ControllerBackends(kubernetes, registered, []), TimeProvider.System, NullLoggerFactory.Instance,
            new ConfigurationBuilder().AddInMemoryCollection(configuration ?? new Dictionary<string, string?>()).Build());
    }

    [Fact]
    public async Task Two_tenants_share_a_queue_s_local_quota_and_the_small_sweep_overtakes_saying_why_it_waited()
    {
        await using var store = SubmissionStore.Open(Options.ResolveStoreRoot());
        var runner = Runner(store, new Dictionary<string, string?>
        {
            ["BatchRunner:Queues:default:backends:0"] = "local",
            ["BatchRunner:Queues:default:quotas:local:indexes"] = "2",
        });
        await runner.StartAsync(default);
        // Enough of it left when the small one arrives that a slow machine still shows the overtaking.
        var large = IntakeRequestReader.Read(Specs.Yaml("large", ns: "team-a", script: "sleep 0.4", extraSpec: "completions: 20\n  parallelism: 2"), null, null).Request!;
        await store.RecordAsync(new Submission("team-a", "large", large.ContentHash, large.Document, "test"));
        await Eventually.WaitAsync(() => runner.Admissions.Find("team-a/large") is { Allowance: 2 }, "the large sweep is admitted at the quota");
        // Once indexes finished, their runtimes give it an estimate.
        await Eventually.WaitAsync(() => runner.Admissions.Find("team-a/large") is { FinishP50: not null }, "the large sweep has an estimate from its runtimes");

        var small = IntakeRequestReader.Read(Specs.Yaml("small", ns: "team-b", script: "sleep 0.4", extraSpec: "completions: 2\n  parallelism: 2"), null, null).Request!;
        await store.RecordAsync(new Submission("team-b", "small", small.ContentHash, small.Document, "test"));
        await Eventually.WaitAsync(() => runner.Admissions.Find("team-a/large") is { Allowance: 1, Reason: WaitReasons.TenantOverShare }, "the large sweep is brought back to its share");
        // The snapshot beside the store is written after the decision is published.
        await Eventually.WaitAsync(() => QueueSnapshot.Read(Options.ResolveStoreRoot())?.ToJsonString().Contains("team-b", StringComparison.Ordinal) == true,
            "the queue's snapshot shows team-b's sweep");

        await Eventually.WaitAsync(() => store.Find("team-a", "large")!.IsFinished && store.Find("team-b", "small")!.IsFinished, "both finished");
        await runner.StopAsync(default);

        var (doneLarge, doneSmall) = (store.Find("team-a", "large")!, store.Find("team-b", "small")!);
        Assert.Equal((SubmissionState.Succeeded, SubmissionState.Succeeded), (doneLarge.State, doneSmall.State));
        Assert.True(doneSmall.FinishedAt < doneLarge.FinishedAt, $"small finished {doneSmall.FinishedAt:O}, large {doneLarge.FinishedAt:O}");
        // What team-a used is kept beside the store, for the next start.
        Assert.Contains(QueueSnapshot.UsageOf(QueueSnapshot.Read(Options.ResolveStoreRoot())), u => u.Tenant == "team-a" && u.ShareSeconds > 0);
    }

    [Fact]
    public async Task A_rerun_asked_through_the_queue_reruns_only_the_failed_indexes_of_a_finished_submission_once()
    {
        await using var store = SubmissionStore.Open(Options.ResolveStoreRoot());
        var (marker, ran) = (Path.Combine(_root, "broken"), Path.Combine(_root, "ran"));
        File.WriteAllText(marker, "");
        var yaml = Specs.Yaml("sweep", script: $"echo $BATCHRUNNER_INDEX >> {ran}; if [ $BATCHRUNNER_INDEX = 1 ] && [ -e {marker} ]; then exit 3; fi", extraSpec: "completions: 3");
        var recorded = IntakeRequestReader.Read(yaml, null, null).Request!;
        await store.RecordAsync(new Submission("default", "sweep", recorded.ContentHash, recorded.Document, "test"));
        var runner = Runner(store);
        await runner.StartAsync(default);
        await Eventually.WaitAsync(() => store.Find("default", "sweep") is { State: SubmissionState.Failed }, "the sweep fails at index 1");
        File.Delete(marker);
        File.Delete(ran);

        // The same document with the rerun annotation, delivered twice; another document; a BatchJob that is not there.
        var sink = new LocalJobSink(store, _root);
        JobRequest Request(string text) => IntakeRequestReader.Read(text, null, null).Request! is var read ? new JobRequest(read.Job, read.Document, read.ContentHash, "m-1") : null!;
        var rerun = Request(yaml.Replace("namespace: default}", "namespace: default, annotations: {batchrunner.io/rerun: failed}}", StringComparison.Ordinal));
        Assert.Equal(SinkOutcome.RerunRequested, (await sink.RequestRerunAsync(rerun, Core.Runs.RerunRequest.Tagged("failed", "m-1"), default)).Outcome);
        Assert.Equal(SinkOutcome.AlreadyRecorded, (await sink.RequestRerunAsync(rerun, Core.Runs.RerunRequest.Tagged("failed", "m-1"), default)).Outcome);
        var other = Request(yaml.Replace("completions: 3", "completions: 4", StringComparison.Ordinal).Replace("namespace: default}", "namespace: default, annotations: {batchrunner.io/rerun: failed}}", StringComparison.Ordinal));
        Assert.Equal(SinkOutcome.Collision, (await sink.RequestRerunAsync(other, "failed@m-2", default)).Outcome);
        var absent = Request(yaml.Replace("name: sweep", "name: absent", StringComparison.Ordinal));
        Assert.Equal(SinkOutcome.Refused, (await sink.RequestRerunAsync(absent, "failed@m-3", default)).Outcome);

        await Eventually.WaitAsync(() => store.Find("default", "sweep") is { State: SubmissionState.Succeeded, Reruns: 1, RerunPending: false }, "the rerun is taken and succeeds");
        Assert.Equal(["1"], File.ReadAllLines(ran));

        // Nothing failed any more: a new request is answered with a refusal, and the outcome stays.
        store.RequestRerun("default", "sweep", "failed@m-4");
        await Eventually.WaitAsync(() => store.Find("default", "sweep") is { RerunPending: false, Reason: not null } found && found.Reason.Contains("no failed indexes", StringComparison.Ordinal),
            "the request that chooses nothing is refused");
        await runner.StopAsync(default);
        Assert.Equal((SubmissionState.Succeeded, 1), (store.Find("default", "sweep")!.State, store.Find("default", "sweep")!.Reruns));
        Assert.Equal(["1"], File.ReadAllLines(ran));
    }

    [Fact]
    public async Task A_submission_naming_a_queue_that_is_refused_waits_saying_why_and_others_run()
    {
        await using var store = SubmissionStore.Open(Options.ResolveStoreRoot());
        var runner = Runner(store, new Dictionary<string, string?>
        {
            ["BatchRunner:Queues:broken:backends:0"] = "local",
            ["BatchRunner:Queues:broken:quotas:local:indexes"] = "-1",
        });
        await runner.StartAsync(default);
        await RecordAsync(store, "fine", "true");
        var stuck = IntakeRequestReader.Read(Specs.Yaml("stuck", extraSpec: "queue: broken"), null, null).Request!;
        await store.RecordAsync(new Submission("default", "stuck", stuck.ContentHash, stuck.Document, "test"));

        await Eventually.WaitAsync(() => store.Find("default", "fine")!.IsFinished, "the other submission finished");
        await Eventually.WaitAsync(() => runner.Admissions.Find("default/stuck") is { Reason: WaitReasons.QueueNotFound }, "the stuck one says why");
        await runner.StopAsync(default);

        Assert.Equal("spec.queue: queue broken is refused (BatchRunner:Queues:broken.quotas.local.indexes: must be a whole number of indexes, 0 or more, got -1); it is admitted once the queue is fixed",
            runner.Admissions.Find("default/stuck")!.Message);
        Assert.Equal(SubmissionState.Pending, store.Find("default", "stuck")!.State);
    }

    [Fact]
    public async Task A_submission_for_a_registered_backend_is_followed_to_its_end_with_its_state_beside_the_store()
    {
        await using var store = SubmissionStore.Open(Options.ResolveStoreRoot());
        var teleport = new TeleportBackend();
        var runner = Runner(store, teleport);
        await runner.StartAsync(default);
        var request = IntakeRequestReader.Read(Specs.Yaml("beamed", extraSpec: "completions: 4\n  image: registry.example/sim:1\n  backend: teleport"), null, null).Request!;
        await store.RecordAsync(new Submission("default", "beamed", request.ContentHash, request.Document, "test"));

        await Eventually.WaitAsync(() => store.Find("default", "beamed")!.IsFinished, "the submission finished");
        await runner.StopAsync(default);

        Assert.Equal(SubmissionState.Succeeded, store.Find("default", "beamed")!.State);
        var runId = Assert.Single(teleport.Advanced.Select(r => r.RunId).Distinct());
        Assert.True(File.Exists(Path.Combine(Options.ResolveStoreRoot(), "teleport", "default", "beamed", runId + ".json")));
    }

    [Fact]
    public async Task A_submission_for_a_backend_the_controller_no_longer_has_fails_naming_spec_backend()
    {
        await using var store = SubmissionStore.Open(Options.ResolveStoreRoot());
        var runner = Runner(store);
        await runner.StartAsync(default);
        var request = IntakeRequestReader.Read(Specs.Yaml("orphan", extraSpec: "image: registry.example/sim:1\n  backend: teleport"), null, null).Request!;
        await store.RecordAsync(new Submission("default", "orphan", request.ContentHash, request.Document, "test"));

        await Eventually.WaitAsync(() => store.Find("default", "orphan")!.IsFinished, "the submission finished");
        await runner.StopAsync(default);

        var done = store.Find("default", "orphan")!;
        Assert.Equal(SubmissionState.Failed, done.State);
        Assert.Equal("BackendUnavailable: spec.backend: teleport is not a backend of this controller (backends here: local)", done.Reason);
    }

    [Fact]
    public async Task A_recorded_submission_runs_with_the_local_backend_to_success()
    {
        await using var store = SubmissionStore.Open(Options.ResolveStoreRoot());
        var runner = Runner(store);
        await runner.StartAsync(default);
        await RecordAsync(store, "quick", "echo {\\\"index\\\": $BATCHRUNNER_INDEX} > $BATCHRUNNER_OUTPUT_DIR/out.jsonl");

        await Eventually.WaitAsync(() => store.Find("default", "quick")!.IsFinished, "the submission finished");
        await runner.StopAsync(default);

        var done = store.Find("default", "quick")!;
        Assert.Equal((SubmissionState.Succeeded, 1), (done.State, done.Starts));
        Assert.Equal(3, Directory.GetFiles(Path.Combine(Options.ResolveStoreRoot(), "batchjob=quick"), "out.jsonl", SearchOption.AllDirectories).Length);
    }

    [Fact]
    public async Task A_submission_running_when_the_runner_stopped_is_resumed_by_the_next_runner()
    {
        await using var store = SubmissionStore.Open(Options.ResolveStoreRoot());
        var marker = Path.Combine(_root, "started-once");
        await RecordAsync(store, "interrupted", $"if [ -f {marker} ]; then exit 0; fi; touch {marker}; sleep 60");

        var first = Runner(store);
        await first.StartAsync(default);
        await Eventually.WaitAsync(() => File.Exists(marker), "the first index started");
        await first.StopAsync(default);
        Assert.Equal(SubmissionState.Running, store.Find("default", "interrupted")!.State);

        var second = Runner(store);
        await second.StartAsync(default);
        await Eventually.WaitAsync(() => store.Find("default", "interrupted")!.IsFinished, "the resumed submission finished");
        await second.StopAsync(default);

        var done = store.Find("default", "interrupted")!;
        Assert.Equal((SubmissionState.Succeeded, 2), (done.State, done.Starts));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
