using System.Net;
using BatchRunner.Kubernetes.Controller;
using k8s.Autorest;

namespace BatchRunner.Kubernetes.Tests;

public sealed class ApiFailureTests
{
    private static HttpOperationException Answered(HttpStatusCode status) =>
        new($"Operation returned an invalid status code '{status}'") { Response = new HttpResponseMessageWrapper(new HttpResponseMessage(status), "") };

    public static TheoryData<string, Exception, bool> Failures => new()
    {
        { "refused", new HttpRequestException("Connection refused (127.0.0.1:6443)", new System.Net.Sockets.SocketException(111)), true },
        { "reset mid-answer", new IOException("The request was aborted.", new IOException("Unable to read data from the transport connection: Connection reset by peer.")), true },
        { "client timeout", new TaskCanceledException("The request was canceled due to the configured HttpClient.Timeout", new TimeoutException()), true },
        { "conflict", Answered(HttpStatusCode.Conflict), true },
        { "throttled", Answered(HttpStatusCode.TooManyRequests), true },
        { "server error", Answered(HttpStatusCode.InternalServerError), true },
        { "timeout after the fact", Answered(HttpStatusCode.GatewayTimeout), true },
        { "forbidden: RBAC is wrong", Answered(HttpStatusCode.Forbidden), false },
        { "unprocessable: a bug in what was sent", Answered(HttpStatusCode.UnprocessableEntity), false },
        { "a bug of ours", new InvalidOperationException("Sequence contains no elements"), false },
        { "cancelled by the caller", new OperationCanceledException(), false },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void Failures_of_the_network_or_the_servers_moment_are_expected_and_bugs_are_not(string why, Exception failure, bool expected) =>
        Assert.True(ApiFailure.IsExpected(failure) == expected, why);

    [Fact]
    public void A_failure_is_told_with_its_causes_each_once()
    {
        var failure = new HttpRequestException("An error occurred while sending the request.",
            new IOException("Unable to read data from the transport connection: Connection reset by peer.",
                new System.Net.Sockets.SocketException(104)));

        Assert.Equal(
            "An error occurred while sending the request: Unable to read data from the transport connection: Connection reset by peer",
            ApiFailure.Describe(failure));
    }
}
