using BatchRunner.Kubernetes.Client;

namespace BatchRunner.Kubernetes.Tests;

public sealed class ApiRequestMetricsHandlerTests
{
    public static TheoryData<string, string, string> Calls => new()
    {
        // method, path (and query), then what is counted: "verb resource", or nothing for a watch
        { "POST", "/apis/batch/v1/namespaces/team-a/jobs", "create jobs" },
        { "GET", "/apis/batch/v1/namespaces/team-a/jobs/sweep", "get jobs" },
        { "GET", "/apis/batch/v1/jobs?labelSelector=a%3Db", "list jobs" },
        { "GET", "/api/v1/namespaces/team-a/pods?labelSelector=x", "list pods" },
        { "PATCH", "/apis/batchrunner.io/v1alpha1/namespaces/team-a/batchjobs/sweep/status", "patch batchjobs/status" },
        { "PATCH", "/apis/batchrunner.io/v1alpha1/namespaces/team-a/batchjobs/sweep", "patch batchjobs" },
        { "POST", "/api/v1/namespaces/team-a/events", "create events" },
        { "PUT", "/apis/coordination.k8s.io/v1/namespaces/batchrunner-system/leases/batchrunner-controller", "update leases" },
        { "DELETE", "/api/v1/namespaces/team-a/configmaps/sweep-plan", "delete configmaps" },
        { "GET", "/api/v1/namespaces/team-a", "get namespaces" },
        { "GET", "/version", "get other" },
        { "GET", "/apis/batch/v1/jobs?watch=true&resourceVersion=5", "" },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public async Task Every_call_but_a_watch_is_counted_by_verb_and_resource(string method, string path, string counted)
    {
        var seen = new List<string>();
        using var handler = new ApiRequestMetricsHandler((verb, resource) => seen.Add($"{verb} {resource}")) { InnerHandler = new Answering() };
        using var client = new HttpClient(handler);

        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), "https://127.0.0.1:6443" + path));

        Assert.Equal(counted.Length == 0 ? [] : [counted], seen);
    }

    private sealed class Answering : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.OK));
    }
}
