using BatchRunner.Kubernetes.Dispatch;

namespace BatchRunner.Kubernetes.Tests;

public sealed class ClusterCapabilitiesTests
{
    [Theory]
    [InlineData("1", "20", false, false, "1.20")]
    [InlineData("1", "21", true, false, "1.21")]
    [InlineData("1", "28", true, false, "1.28")]
    [InlineData("1", "29", true, true, "1.29")]
    [InlineData("1", "29+", true, true, "1.29")]
    [InlineData("1", "31", true, true, "1.31")]
    [InlineData("2", "0", true, true, "2.0")]
    public void The_server_version_decides_indexed_jobs_and_per_index_retries(string major, string minor, bool indexed, bool perIndex, string version)
    {
        var cluster = ClusterCapabilities.FromVersion(major, minor);

        Assert.Equal(indexed, cluster.IndexedJobs);
        Assert.Equal(perIndex, cluster.BackoffLimitPerIndex);
        Assert.Equal(perIndex, cluster.FailedIndexesInStatus);
        Assert.Equal(version, cluster.Version);
    }

    [Fact]
    public void A_version_that_is_not_a_number_counts_as_zero_and_promises_nothing()
    {
        var cluster = ClusterCapabilities.FromVersion("", "x");

        Assert.Equal(new ClusterCapabilities(0, 0), cluster);
        Assert.False(cluster.IndexedJobs);
    }
}
