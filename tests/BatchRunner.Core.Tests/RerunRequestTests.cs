using BatchRunner.Core.Runs;
using Xunit;

namespace BatchRunner.Core.Tests;

public sealed class RerunRequestTests
{
    [Theory]
    [InlineData("failed", "2,5-6", "2,5-6", null)]
    [InlineData("FAILED@2026-12-05T10:00:00Z", "4", "4", null)]
    [InlineData("failed", null, null, "the run has no failed indexes")]
    [InlineData("3,7-9", null, "3,7-9", null)]
    [InlineData(" 9 , 3 @again", null, "3,9", null)]
    [InlineData("0-9", "1", "0-9", null)]
    [InlineData("10", null, null, "index 10 is outside the run: it has 10 indexes (0 to 9)")]
    [InlineData("5-2", null, null, "\"5-2\" is a range written backwards (write 2-5)")]
    [InlineData("everything", null, null, "\"everything\" is neither failed nor indexes such as 3,7-9")]
    [InlineData("@x", null, null, "\"@x\" names no indexes: write failed, or indexes such as 3,7-9")]
    [InlineData("1,,2", null, null, "\"\" is not an index or a range of them (write 3,7-9)")]
    public void A_request_chooses_failed_indexes_or_listed_ones_within_the_run_or_says_why_not(string request, string? failed, string? chosen, string? error)
    {
        var indexes = RerunRequest.Resolve(request, 10, failed, out var why);

        Assert.Equal(chosen, indexes is null ? null : IndexRanges.Format(indexes));
        Assert.Equal(error, why);
    }
}
