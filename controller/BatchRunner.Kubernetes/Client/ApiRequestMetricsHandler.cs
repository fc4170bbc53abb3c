namespace BatchRunner.Kubernetes.Client;

/// <summary>
/// Counts the controller's calls to the API server by verb and resource (watches excepted: one stream, not a call
/// per change), as client-go's <c>rest_client_requests_total</c> does, so what a BatchJob costs the API server is
/// a figure anyone can read off <c>/metrics</c>.
/// </summary>
public sealed class ApiRequestMetricsHandler(Action<string, string> count) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.RequestUri is { } uri && !uri.Query.Contains("watch=true", StringComparison.Ordinal))
        {
            count(Verb(request.Method, uri.AbsolutePath), ResourceOf(uri.AbsolutePath));
        }

        return base.SendAsync(request, cancellationToken);
    }

    /// <summary>
    /// The resource a path names, with its subresource (<c>batchjobs/status</c>): /api/v1/… and /apis/group/version/…,
    /// namespaced or not; "other" for what is not a resource (/version).
    /// </summary>
    public static string ResourceOf(string path) => WithinNamespace(path) switch
    {
        [var resource] => resource,
        [var resource, _] => resource,
        [var resource, _, var sub, ..] => $"{resource}/{sub}",
        _ => "other",
    };

    /// <summary>GET of one object or of a list, as the API server's audit log names them.</summary>
    private static string Verb(HttpMethod method, string path) => method.Method switch
    {
        "GET" => WithinNamespace(path) is [_] ? "list" : "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        var other => other.ToLowerInvariant(),
    };

    /// <summary>The path after the API group and version and after <c>namespaces/NS</c>: resource, name, subresource.</summary>
    private static string[] WithinNamespace(string path)
    {
        var rest = path.Split('/', StringSplitOptions.RemoveEmptyEntries) switch
        {
            ["api", _, .. var r] => r,
            ["apis", _, _, .. var r] => r,
            _ => [],
        };
        return rest is ["namespaces", _, _, ..] ? rest[2..] : rest;
    }
}
