using BatchRunner.Aws.Intake;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Tests;

public sealed class RequestIdentityTests
{
    [Fact]
    public void A_request_id_attribute_comes_before_the_deduplication_id_and_that_before_the_body()
    {
        Assert.Equal(("run-42", IdentitySource.RequestId), RequestIdentity.Derive("run-42", "dedup-1", "body"));
        Assert.Equal(("dedup-1", IdentitySource.DeduplicationId), RequestIdentity.Derive(null, "dedup-1", "body"));
        Assert.Equal(IdentitySource.BodyHash, RequestIdentity.Derive("", "", "body").Source);
    }

    [Fact]
    public void The_same_body_always_gets_the_same_name_and_another_body_another()
    {
        var (first, _) = RequestIdentity.Derive(null, null, "kind: BatchJob");
        var (again, _) = RequestIdentity.Derive(null, null, "kind: BatchJob");
        var (other, _) = RequestIdentity.Derive(null, null, "kind: BatchJob ");

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        Assert.Matches("^req-[0-9a-f]{16}$", first);
    }

    [Theory]
    [InlineData("nightly-sweep", "nightly-sweep")]
    [InlineData("Nightly_Sweep/2026-07-01", "^nightly-sweep-2026-07-01-[0-9a-f]{10}$")]
    [InlineData("---", "^req-[0-9a-f]{10}$")]
    [InlineData("ÉTÉ été", "^t-t-[0-9a-f]{10}$")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "^0123456789abcdef0123456789abcdef0123456-[0-9a-f]{10}$")]
    public void Any_id_becomes_a_dns_label_of_at_most_50_characters(string id, string pattern)
    {
        var name = RequestIdentity.NameFor(id);

        Assert.Matches(pattern, name);
        Assert.Matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name);
        Assert.InRange(name.Length, 1, SpecLimits.MaxNameLength);
        Assert.Equal(name, RequestIdentity.NameFor(id));
    }

    [Fact]
    public void Ids_that_differ_only_in_case_or_punctuation_get_different_names()
    {
        var names = new[] { "Order-17", "order_17", "ORDER 17", "order.17" }.Select(RequestIdentity.NameFor).ToList();

        Assert.Equal(names.Count, names.Distinct().Count());
    }
}
