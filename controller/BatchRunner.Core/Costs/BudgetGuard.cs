using System.Globalization;

namespace BatchRunner.Core.Costs;

/// <summary>Where a run stands against its budget.</summary>
/// <param name="Cap">Indexes the run may have going at once (finished ones deducted from what the budget buys); null: no cap.</param>
/// <param name="Reached">No index that has not started will start: the budget would not cover it.</param>
/// <param name="Reason">The Budget condition's reason: WithinBudget, CostNotKnownYet, BudgetReached or NoPrice.</param>
/// <param name="Covers">How many of the run's indexes the budget buys in all; null: all of them, or not known yet.</param>
public sealed record BudgetStanding(int? Cap, bool Reached, double? ProjectedUsd, string Reason, string Message, int? Covers = null)
{
    public const string WithinBudget = "WithinBudget";
    public const string CostNotKnownYet = "CostNotKnownYet";
    public const string BudgetReached = "BudgetReached";
    public const string NoPrice = "NoPrice";
}

/// <summary>
/// Decides how many indexes a run with <c>spec.budget</c> may start, from what one index costs: its backend's price for
/// one index-second (requested resources, or the backend's billed size) times the typical seconds an index takes (the
/// run's own runtimes, else its timeout as the most one can take). The budget buys <c>floor(budget / cost of an index)</c>
/// indexes; those finished are deducted, and what runs keeps running: an index that would pass the budget never starts.
/// Before any index finished, and without a timeout, nothing is known of the cost: the first ones run to learn it.
/// A host applies <see cref="BudgetStanding.Cap"/> as the run's allowance (every backend honours that) and ends the run
/// once the budget is reached and nothing runs.
/// </summary>
public static class BudgetGuard
{
    /// <param name="usdPerIndexSecond">What one index costs a second on its backend; null: the backend has no price.</param>
    /// <param name="finished">Indexes that ended (succeeded or out of attempts).</param>
    /// <param name="typicalSeconds">The run's typical index runtime so far (null: none finished yet).</param>
    public static BudgetStanding Decide(
        double budgetUsd, string backend, double? usdPerIndexSecond, int total, int finished, int running, double? typicalSeconds, double? timeoutSeconds)
    {
        if (usdPerIndexSecond is not { } rate)
        {
            return new BudgetStanding(0, false, null, BudgetStanding.NoPrice,
                $"spec.budget: the backend {backend} has no price, so no cost can be projected and nothing starts; give it one (batchrunner run --prices FILE, or the controller's BatchRunner:Prices)");
        }

        var seconds = typicalSeconds ?? timeoutSeconds;
        if (seconds is not { } perIndex || rate <= 0)
        {
            return rate <= 0
                ? new BudgetStanding(null, false, 0, BudgetStanding.WithinBudget, Text($"the backend {backend} costs nothing at its price: within the budget of {Usd(budgetUsd)}"))
                : new BudgetStanding(null, false, null, BudgetStanding.CostNotKnownYet,
                    Text($"no index has finished yet and there is no timeoutSeconds, so the cost of one is not known: the first ones run to learn it (budget {Usd(budgetUsd)})"));
        }

        var indexCost = rate * Math.Max(perIndex, 0.001);
        // A hair over the quotient, so that a budget of exactly three indexes buys three whatever the float rounding.
        var affordable = (int)Math.Min(int.MaxValue, Math.Floor(budgetUsd / indexCost * (1 + 1e-9)));
        var projected = indexCost * total;
        var remaining = Math.Max(0, total - finished - running);
        var cap = Math.Max(0, affordable - finished);
        var basis = Text($"{Usd(indexCost)} an index ({perIndex:0.##} s{(typicalSeconds is null ? ", its timeout" : " typical")} at {Usd(rate * 3600)} an hour)");
        if (projected <= budgetUsd)
        {
            return new BudgetStanding(null, false, projected, BudgetStanding.WithinBudget, Text($"projected {Usd(projected)} for {total} indexes at {basis}: within the budget of {Usd(budgetUsd)}"));
        }

        var reached = remaining > 0 && cap <= running;
        var notStarting = Math.Max(0, total - Math.Max(affordable, finished + running));
        return new BudgetStanding(cap, reached, projected, reached ? BudgetStanding.BudgetReached : BudgetStanding.WithinBudget,
            Text($"projected {Usd(projected)} for {total} indexes at {basis} would pass the budget of {Usd(budgetUsd)}: it covers {affordable}, so {notStarting} will not start{(reached ? "" : "; indexes start until then")}"),
            affordable);
    }

    private static string Usd(double usd) => usd.ToString(usd < 1 ? "$0.######" : "$0.00", CultureInfo.InvariantCulture);

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
