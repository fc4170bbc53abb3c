using BatchRunner.Core.Costs;
using BatchRunner.Core.Scheduling;
using BatchRunner.Core.Spec;

namespace BatchRunner.Backends;

/// <summary>
/// <c>spec.budget</c> as both hosts apply it to any backend: the standing (<see cref="BudgetGuard"/>) from the run's
/// counts and runtimes and the backend's price of an index-second; its cap goes into the run's allowance, which every
/// backend honours by starting nothing beyond it and killing nothing.
/// </summary>
public static class RunBudget
{
    /// <summary>Null when the BatchJob has no budget. Runtimes count as the backend bills them (Fargate: a minute at least).</summary>
    public static BudgetStanding? Standing(IBatchBackend backend, BatchJob job, PriceTable prices, int succeeded, int failed, int running, RuntimeSummary? runtimes) =>
        job.Spec.Budget is { } budget
            ? BudgetGuard.Decide(budget, backend.Backend.Name, backend.CostPerIndexSecond(job, prices), job.Spec.Completions, succeeded + failed, running,
                runtimes?.P50Seconds is { } typical ? backend.BilledSeconds(typical) : null,
                job.Spec.TimeoutSeconds is { } timeout ? backend.BilledSeconds(timeout) : null)
            : null;

    /// <summary>The run with the budget's cap within its allowance.</summary>
    public static BackendRun Capped(BackendRun run, BudgetStanding? standing) =>
        standing?.Cap is { } cap ? run with { Allowance = Math.Min(run.Allowance ?? int.MaxValue, cap), StartLimit = standing.Covers } : run;

    /// <summary>Nothing runs and nothing more may start: the run ends here, failed for its budget.</summary>
    public static bool Ends(BudgetStanding? standing, BackendProgress progress) =>
        standing is { Reached: true } && progress.Active == 0 && !progress.IsTerminal;

    /// <summary>How a run that its budget ended finishes: Failed, BudgetReached, with what was done kept.</summary>
    public static BackendProgress Ended(BackendProgress stopped, BudgetStanding standing) =>
        stopped with { Phase = Core.Runs.RunPhase.Failed, FailureReason = BudgetStanding.BudgetReached, FailureMessage = standing.Message };
}
