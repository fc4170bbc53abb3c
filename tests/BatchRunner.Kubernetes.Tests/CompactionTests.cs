using System.Collections.Concurrent;
using BatchRunner.Core.Runs;
using BatchRunner.Kubernetes.Compaction;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using Microsoft.Extensions.Logging.Abstractions;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>
/// Compaction of finished runs: the worker (once per run, retries with backoff, a grace period for failed runs) with a
/// scripted <see cref="IRunCompactor"/>, and the reconciler handing it finished BatchJobs and writing the
/// <c>ResultsCompacted</c> condition.
/// </summary>
public sealed class CompactionTests : IDisposable
{
    private const string Key = Specs.Namespace + "/" + Specs.Name;
    private const string Store = "s3://bucket/results";
    private static readonly CompactionSettings Settings = new(1, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(30));

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeCluster _cluster = new();
    private readonly ScriptedCompactor _compactor = new();
    private readonly BlockingCollection<string> _settled = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly ControllerMetrics _metrics = new(Prometheus.Metrics.NewCustomRegistry());
    private readonly CompactionWorker _worker;
    private readonly Task _running;

    public CompactionTests()
    {
        _worker = new CompactionWorker(_compactor, Settings, _time, NullLogger<CompactionWorker>.Instance, _metrics);
        _running = _worker.RunAsync(_settled.Add, _stop.Token);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _running.Wait(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }

    private BatchJobStatus Status => _cluster.StatusOf(Key);

    private static CompactionTarget Target(string run = "r1") => new(Store, Specs.Name, run);

    [Fact]
    public void A_run_asked_for_twice_is_compacted_once_and_settles()
    {
        var first = _worker.Request(Key, Target());
        var again = _worker.Request(Key, Target());

        Assert.Equal(CompactionPhase.Pending, first.Phase);
        Assert.Equal(first, again);
        Assert.Equal(Key, NextSettled());
        Assert.Equal([Target()], _compactor.Calls);
        var done = _worker.Request(Key, Target());
        Assert.Equal(CompactionPhase.Compacted, done.Phase);
        Assert.Equal("run r1: 3 attempt(s) compacted", done.Message);
        Assert.Single(_compactor.Calls);
    }

    [Fact]
    public void A_failure_is_retried_after_a_doubling_backoff_and_says_why()
    {
        _compactor.Script.Enqueue(_ => throw new IOException("S3 said 503 Slow Down"));
        _compactor.Script.Enqueue(_ => throw new IOException("S3 said 503 again"));

        _worker.Request(Key, Target());
        NextSettled();
        var failed = _worker.Request(Key, Target());
        Assert.Equal((CompactionPhase.Retrying, 1), (failed.Phase, failed.Failures));
        Assert.Equal($"run r1: compacting its results in {Store} failed (1 time(s)); retrying in 10s: S3 said 503 Slow Down", failed.Message);

        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(_settled.TryTake(out _, TimeSpan.FromMilliseconds(200)));
        _time.Advance(TimeSpan.FromSeconds(1));
        NextSettled();
        Assert.Equal((CompactionPhase.Retrying, 2), (_worker.Request(Key, Target()).Phase, _worker.Request(Key, Target()).Failures));
        Assert.Contains("retrying in 20s: S3 said 503 again", _worker.Request(Key, Target()).Message, StringComparison.Ordinal);

        _time.Advance(TimeSpan.FromSeconds(20));
        NextSettled();
        Assert.Equal(CompactionPhase.Compacted, _worker.Request(Key, Target()).Phase);
        Assert.Equal(3, _compactor.Calls.Count);
        // What the dashboard's compaction panels read.
        Assert.Equal((2, 1), (_metrics.Compactions.WithLabels("failed").Value, _metrics.Compactions.WithLabels("compacted").Value));
        Assert.Equal(3, _metrics.CompactionDuration.Count);
    }

    [Fact]
    public void Nothing_to_compact_is_said_and_not_retried()
    {
        _compactor.Script.Enqueue(t => new CompactionOutcome(CompactionResult.NothingToCompact, "no ledger rows"));

        _worker.Request(Key, Target());
        NextSettled();
        _time.Advance(TimeSpan.FromMinutes(30));

        Assert.False(_settled.TryTake(out _, TimeSpan.FromMilliseconds(200)));
        var progress = _worker.Request(Key, Target());
        Assert.Equal((CompactionPhase.NothingToCompact, "run r1: nothing to compact: no ledger rows"), (progress.Phase, progress.Message));
        Assert.Single(_compactor.Calls);
    }

    [Fact]
    public void A_failed_run_is_compacted_after_the_grace_period_its_last_pods_need()
    {
        var progress = _worker.Request(Key, Target(), failedAt: _time.GetUtcNow().AddSeconds(-10));

        Assert.Equal("run r1: its results are compacted into s3://bucket/results from 12:00:20Z, once its last pods have uploaded", progress.Message);
        Assert.False(_settled.TryTake(out _, TimeSpan.FromMilliseconds(200)));
        Assert.Empty(_compactor.Calls);
        _time.Advance(TimeSpan.FromSeconds(20));
        NextSettled();
        Assert.Single(_compactor.Calls);
    }

    [Fact]
    public void A_forgotten_run_is_not_retried_and_a_new_run_replaces_the_old()
    {
        _compactor.Script.Enqueue(_ => throw new IOException("down"));
        _worker.Request(Key, Target());
        NextSettled();

        _worker.Forget(Key);
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.False(_settled.TryTake(out _, TimeSpan.FromMilliseconds(200)));
        Assert.Single(_compactor.Calls);

        Assert.Equal(CompactionPhase.Pending, _worker.Request(Key, Target("r2")).Phase);
        NextSettled();
        Assert.Equal([Target(), Target("r2")], _compactor.Calls);
    }

    [Fact]
    public async Task A_succeeded_kubernetes_run_is_compacted_and_its_condition_says_so_once()
    {
        var runId = await FinishKubernetesRunAsync();

        var pending = AssertCondition("False", Conditions.Reasons.Compacting);
        Assert.Equal($"run {runId}: compacting its results in {Store}", pending.Message);
        Assert.Equal(Key, NextSettled());
        Assert.Equal([new CompactionTarget(Store, Specs.Name, runId)], _compactor.Calls);

        await ReconcileAsync();
        var done = AssertCondition("True", Conditions.Reasons.Compacted);
        Assert.Equal($"run {runId}: 3 attempt(s) compacted", done.Message);
        Assert.Contains(_cluster.Events, e => e is ("Normal", Conditions.Reasons.Compacted, _));
        Assert.Equal(RunPhase.Succeeded, Status.Phase);

        // Level-based: once the condition says so, nothing is asked again and nothing is written.
        var writes = _cluster.Writes.Count;
        await ReconcileAsync();
        await ReconcileAsync();
        Assert.Equal(writes, _cluster.Writes.Count);
        Assert.Single(_compactor.Calls);
    }

    [Fact]
    public async Task A_compaction_that_fails_is_a_condition_with_the_error_never_a_failed_reconcile()
    {
        _compactor.Script.Enqueue(_ => throw new InvalidOperationException("DuckDB ran out of memory"));
        await FinishKubernetesRunAsync();
        NextSettled();

        await ReconcileAsync();

        var failed = AssertCondition("False", Conditions.Reasons.CompactionFailed);
        Assert.EndsWith("retrying in 10s: DuckDB ran out of memory", failed.Message, StringComparison.Ordinal);
        Assert.Contains(_cluster.Events, e => e is ("Warning", Conditions.Reasons.CompactionFailed, _));
        Assert.Equal(RunPhase.Succeeded, Status.Phase);

        _time.Advance(TimeSpan.FromSeconds(10));
        NextSettled();
        await ReconcileAsync();
        AssertCondition("True", Conditions.Reasons.Compacted);
    }

    [Fact]
    public async Task A_running_or_cancelled_run_or_one_without_a_store_is_not_compacted()
    {
        // Running.
        _cluster.Apply(Specs.Object("""{"completions": 3, "parallelism": 3}"""));
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Active = 3 });
        await ReconcileAsync();
        Assert.Null(Status.Find(Conditions.ResultsCompacted));

        // Cancelled.
        _cluster.Update(Key, b => b.Metadata.Annotations = new Dictionary<string, string> { [BatchJobResource.CancelAnnotation] = "true" });
        await ReconcileAsync();
        Assert.Equal(RunPhase.Cancelled, Status.Phase);
        Assert.Null(Status.Find(Conditions.ResultsCompacted));

        // Succeeded, but the controller collects no results (pods ran the sh entrypoint).
        var other = new FakeCluster();
        other.Apply(Specs.Object("""{"completions": 3, "parallelism": 3, "results": {"uri": "s3://own/prefix"}}"""));
        var reconciler = new BatchJobReconciler(other, DispatchSettings.Default, _time, NullLoggerFactory.Instance, compaction: _worker);
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        other.SetJobStatus(Specs.Name, new V1JobStatus { Succeeded = 3, Conditions = [StatusDerivationTests.Condition("Complete")] });
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        Assert.Equal(RunPhase.Succeeded, other.StatusOf(Key).Phase);
        Assert.Null(other.StatusOf(Key).Find(Conditions.ResultsCompacted));
        Assert.Empty(_compactor.Calls);
    }

    [Fact]
    public async Task A_spec_naming_its_own_store_is_compacted_there()
    {
        await FinishKubernetesRunAsync("""{"completions": 3, "parallelism": 3, "results": {"uri": "s3://own/prefix"}}""");

        NextSettled();

        Assert.Equal("s3://own/prefix", Assert.Single(_compactor.Calls).Store);
    }

    [Fact]
    public async Task A_finished_aws_batch_run_is_compacted_and_a_failed_one_after_its_grace_period()
    {
        const string spec = """{"backend": "aws-batch", "completions": 6, "parallelism": 6}""";
        var backend = new ExternalBackendReconcilerTests.ScriptedBackend
        {
            Next = _ => ExternalBackendReconcilerTests.Progress(RunPhase.Failed, succeeded: 4, active: 0, "{}"),
        };
        _cluster.Apply(Specs.Object(spec));
        _time.AdjustTime(new DateTimeOffset(2026, 3, 1, 12, 9, 10, TimeSpan.Zero));
        var reconciler = new BatchJobReconciler(_cluster, Dispatch(), _time, NullLoggerFactory.Instance, [backend], _worker);

        await reconciler.ReconcileAsync(Key, CancellationToken.None);

        // The backend says the run failed at 12:09:00: compaction waits until 12:09:30.
        Assert.Equal(RunPhase.Failed, Status.Phase);
        var waiting = AssertCondition("False", Conditions.Reasons.Compacting);
        Assert.Contains("from 12:09:30Z", waiting.Message, StringComparison.Ordinal);
        Assert.False(_settled.TryTake(out _, TimeSpan.FromMilliseconds(200)));
        _time.Advance(TimeSpan.FromSeconds(20));
        NextSettled();
        Assert.Equal(new CompactionTarget(Store, Specs.Name, RunIdentity.For(Specs.Job(spec))), Assert.Single(_compactor.Calls));

        // The terminal path (no more calls to the backend) writes the outcome.
        await reconciler.ReconcileAsync(Key, CancellationToken.None);
        AssertCondition("True", Conditions.Reasons.Compacted);
        Assert.Single(backend.Advanced);
    }

    private async Task<string> FinishKubernetesRunAsync(string spec = """{"completions": 3, "parallelism": 3}""")
    {
        _cluster.Apply(Specs.Object(spec));
        await ReconcileAsync();
        _cluster.SetJobStatus(Specs.Name, new V1JobStatus { Succeeded = 3, Conditions = [StatusDerivationTests.Condition("Complete")] });
        await ReconcileAsync();
        Assert.Equal(RunPhase.Succeeded, Status.Phase);
        return Status.RunId!;
    }

    private static DispatchSettings Dispatch() => new(3600, new ResultsCollection(Store, "batchrunner/controller:test"));

    private Task<ReconcileResult> ReconcileAsync() =>
        new BatchJobReconciler(_cluster, Dispatch(), _time, NullLoggerFactory.Instance, compaction: _worker).ReconcileAsync(Key, CancellationToken.None);

    private string NextSettled()
    {
        Assert.True(_settled.TryTake(out var key, TimeSpan.FromSeconds(10)), "no compaction settled");
        return key!;
    }

    private Condition AssertCondition(string status, string reason)
    {
        var condition = Status.Find(Conditions.ResultsCompacted);
        Assert.True(condition is not null, $"no condition {Conditions.ResultsCompacted} in {string.Join(", ", Status.Conditions.Select(c => c.Type))}");
        Assert.Equal((status, reason), (condition.Status, condition.Reason));
        return condition;
    }

    private sealed class ScriptedCompactor : IRunCompactor
    {
        public ConcurrentQueue<Func<CompactionTarget, CompactionOutcome>> Script { get; } = new();

        public List<CompactionTarget> Calls { get; } = [];

        public Task<CompactionOutcome> CompactAsync(CompactionTarget target, CancellationToken cancellation)
        {
            lock (Calls)
            {
                Calls.Add(target);
            }

            return Task.FromResult(Script.TryDequeue(out var next) ? next(target) : new CompactionOutcome(CompactionResult.Compacted, "3 attempt(s) compacted"));
        }
    }
}
