using BatchRunner.Core.Costs;
using Xunit;

namespace BatchRunner.Core.Tests;

/// <summary>What a budget lets a run start, as a table: one index costs rate × typical seconds; finished ones are deducted.</summary>
public sealed class BudgetGuardTests
{
    // $0.01 an index-second: an index of 10 s costs $0.10, so a budget of $1 buys 10 indexes.
    private const double Rate = 0.01;

    public static TheoryData<string, double?, int, int, double?, double?, int?, bool, string> Cases => new()
    {
        // what, rate, finished, running, typical s, timeout s → cap, reached, reason
        { "whole run fits: no cap", Rate, 0, 0, 0.5, null, null, false, BudgetStanding.WithinBudget },
        { "nothing known yet: the first ones run", Rate, 0, 2, null, null, null, false, BudgetStanding.CostNotKnownYet },
        { "the timeout bounds an index before any finished", Rate, 0, 0, null, 10.0, 10, false, BudgetStanding.WithinBudget },
        { "3 finished of 10 affordable: 7 may go at once", Rate, 3, 2, 10.0, null, 7, false, BudgetStanding.WithinBudget },
        { "8 finished and 2 running: none more", Rate, 8, 2, 10.0, null, 2, true, BudgetStanding.BudgetReached },
        { "all affordable finished", Rate, 10, 0, 10.0, null, 0, true, BudgetStanding.BudgetReached },
        { "past the budget already (a first wave ran)", Rate, 12, 1, 10.0, null, 0, true, BudgetStanding.BudgetReached },
        { "the typical runtime wins over the timeout", Rate, 0, 0, 20.0, 10.0, 5, false, BudgetStanding.WithinBudget },
        { "no price: nothing starts", null, 0, 0, 10.0, null, 0, false, BudgetStanding.NoPrice },
        { "free backend: no cap", 0.0, 50, 4, 10.0, null, null, false, BudgetStanding.WithinBudget },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_budget_caps_what_a_run_may_have_going(string what, double? rate, int finished, int running, double? typical, double? timeout, int? cap, bool reached, string reason)
    {
        var standing = BudgetGuard.Decide(1.0, "kubernetes", rate, total: 100, finished, running, typical, timeout);

        Assert.True((cap, reached, reason) == (standing.Cap, standing.Reached, standing.Reason), $"{what}: {standing}");
    }

    [Fact]
    public void The_message_says_what_the_projection_is_and_how_many_indexes_will_not_start()
    {
        var standing = BudgetGuard.Decide(1.0, "aws-batch", Rate, total: 100, finished: 8, running: 2, typicalSeconds: 10, timeoutSeconds: null);

        Assert.Equal(10.0, standing.ProjectedUsd!.Value, 9);
        Assert.Equal(10, standing.Covers);
        Assert.Equal("projected $10.00 for 100 indexes at $0.1 an index (10 s typical at $36.00 an hour) would pass the budget of $1.00: it covers 10, so 90 will not start", standing.Message);
    }

    [Fact]
    public void A_backend_without_a_price_is_named_with_how_to_give_one()
    {
        var standing = BudgetGuard.Decide(5, "local", null, 10, 0, 0, null, null);

        Assert.Contains("the backend local has no price", standing.Message, StringComparison.Ordinal);
        Assert.Contains("--prices FILE", standing.Message, StringComparison.Ordinal);
    }
}
