using BatchRunner.Backends;
using BatchRunner.Core.Costs;
using BatchRunner.Core.Runs;
using BatchRunner.Kubernetes.Controller;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Status;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>
/// spec.budget through the reconciler, with a scripted backend: the budget's cap goes into the allowance the backend is
/// handed, the Budget condition says where the run stands, and a run whose budget is spent ends Failed once nothing runs.
/// </summary>
public sealed class BudgetReconcilerTests
{
    private const string Key = Specs.Namespace + "/" + Specs.Name;

    // 1 vCPU at $36 an hour is a cent a second; an index takes at most its 10 s timeout: $0.10. $0.30 buys 3 of 6.
    private const string Budgeted = """
        {"backend": "aws-batch", "completions": 6, "parallelism": 6, "timeoutSeconds": 10, "resources": {"cpu": "1", "memory": "1Gi"}, "budget": {"usd": 0.3}}
        """;

    private static readonly PriceTable Prices = new(new Dictionary<string, Price>(StringComparer.Ordinal) { ["aws-batch"] = new(36, 0) });

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeCluster _cluster = new();
    private readonly ExternalBackendReconcilerTests.ScriptedBackend _backend = new();

    private BatchJobStatus Status => _cluster.StatusOf(Key);

    private async Task<ReconcileResult> ReconcileAsync(PriceTable prices)
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        var registry = BatchJobReconciler.Registry(_cluster, DispatchSettings.Default, NullLoggerFactory.Instance, [_backend], []);
        return await new BatchJobReconciler(_cluster, registry, null, _time, NullLogger<BatchJobReconciler>.Instance, prices: prices).ReconcileAsync(Key, CancellationToken.None);
    }

    [Fact]
    public async Task The_backend_may_start_only_what_the_budget_covers_and_the_run_ends_failed_once_that_is_done()
    {
        _cluster.Apply(Specs.Object(Budgeted));
        _backend.Next = run => ExternalBackendReconcilerTests.Progress(RunPhase.Running, succeeded: 0, active: 3, state: "{}");

        await ReconcileAsync(Prices);

        Assert.Equal(3, Assert.Single(_backend.Advanced).Allowance);
        var within = Status.Find(Conditions.Budget)!;
        Assert.Equal(("True", BudgetStanding.WithinBudget), (within.Status, within.Reason));
        Assert.Contains("would pass the budget of $0.3: it covers 3, so 3 will not start", within.Message, StringComparison.Ordinal);

        // Two finished and one runs: none more may start, and the run goes on.
        _backend.Next = run => ExternalBackendReconcilerTests.Progress(RunPhase.Running, succeeded: 2, active: 1, state: "{}");
        await ReconcileAsync(Prices);
        _backend.Next = run => ExternalBackendReconcilerTests.Progress(RunPhase.Running, succeeded: 3, active: 0, state: "{}");
        var result = await ReconcileAsync(Prices);
        Assert.Equal(1, _backend.Advanced[^1].Allowance);
        Assert.Equal(("False", BudgetStanding.BudgetReached), (Status.Find(Conditions.Budget)!.Status, Status.Find(Conditions.Budget)!.Reason));
        Assert.Empty(_backend.Cancelled);

        // Three finished, nothing runs: the rest never starts, so what was submitted is stopped and the run ends.
        result = await ReconcileAsync(Prices);
        Assert.Null(result.RequeueAfter);
        Assert.Equal(BudgetStanding.BudgetReached, Assert.Single(_backend.Cancelled).Reason);
        Assert.Equal(RunPhase.Failed, Status.Phase);
        Assert.Equal(BudgetStanding.BudgetReached, Status.Find(Conditions.Failed)?.Reason);
        Assert.Contains(_cluster.Events, e => e.Type == "Warning" && e.Reason == BudgetStanding.BudgetReached);
        var advanced = _backend.Advanced.Count;
        await ReconcileAsync(Prices);
        Assert.Equal(advanced, _backend.Advanced.Count);
    }

    [Fact]
    public async Task A_budget_on_a_backend_without_a_price_starts_nothing_and_says_how_to_give_one()
    {
        _cluster.Apply(Specs.Object(Budgeted));
        _backend.Next = run => ExternalBackendReconcilerTests.Progress(RunPhase.Pending, succeeded: 0, active: 0, state: "{}") with { Dispatched = false, Reason = BackendReasons.Queued };

        await ReconcileAsync(new PriceTable(new Dictionary<string, Price>(StringComparer.Ordinal)));

        Assert.Equal(0, Assert.Single(_backend.Advanced).Allowance);
        var budget = Status.Find(Conditions.Budget)!;
        Assert.Equal(("False", BudgetStanding.NoPrice), (budget.Status, budget.Reason));
        Assert.Contains("BatchRunner:Prices", budget.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_batchjob_without_a_budget_has_no_budget_condition_and_no_cap()
    {
        _cluster.Apply(Specs.Object(Budgeted.Replace(""", "budget": {"usd": 0.3}""", "", StringComparison.Ordinal)));
        _backend.Next = run => ExternalBackendReconcilerTests.Progress(RunPhase.Running, succeeded: 0, active: 6, state: "{}");

        await ReconcileAsync(Prices);

        Assert.Null(Assert.Single(_backend.Advanced).Allowance);
        Assert.Null(Status.Find(Conditions.Budget));
    }
}
