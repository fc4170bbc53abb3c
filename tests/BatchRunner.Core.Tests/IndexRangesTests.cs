using BatchRunner.Core.Runs;

namespace BatchRunner.Core.Tests;

public sealed class IndexRangesTests
{
    [Theory]
    [InlineData("", 0)]
    [InlineData("3", 1)]
    [InlineData("1,3-5,8", 5)]
    [InlineData("0-999999", 1_000_000)]
    [InlineData("0-499999,500001-999999", 999_999)]
    public void Counting_ranges_needs_no_list_of_their_indexes(string ranges, int count)
    {
        Assert.Equal(count, IndexRanges.Count(ranges));
        Assert.Equal(IndexRanges.Parse(ranges).Count, IndexRanges.Count(ranges));
    }

    [Theory]
    [InlineData("1,3-5,8", 100, "1,3-5,8", false)]
    [InlineData("1,3-5,8", 7, "1,3-5,8", false)]
    [InlineData("1,3-5,8", 6, "1,3-5", true)]
    [InlineData("1,3-5,8", 5, "1,3-5", true)]
    [InlineData("1,3-5,8", 4, "1", true)]
    [InlineData("1,3-5,8", 3, "1", true)]
    [InlineData("123456,7", 3, null, true)]
    [InlineData(null, 3, null, false)]
    public void Truncating_keeps_whole_ranges_from_the_beginning(string? ranges, int maxChars, string? kept, bool truncated)
    {
        Assert.Equal(kept, IndexRanges.Truncate(ranges, maxChars, out var cut));
        Assert.Equal(truncated, cut);
    }
}
