using System.Net;
using k8s.Autorest;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// How a failed call to the API server is told in the log. What the network or the server's moment causes (refused,
/// reset, timed out, 409 Conflict, 429, 5xx) is expected and retried: one line with its reasons, as client-go logs it,
/// so an outage of a minute is not thousands of stack traces. Anything else keeps its stack, as a bug should.
/// </summary>
public static class ApiFailure
{
    public static bool IsExpected(Exception e) => e switch
    {
        HttpOperationException { Response: { } response } => response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError,
        HttpRequestException or IOException or TimeoutException or System.Net.Sockets.SocketException => true,
        // A client-side timeout (HttpClient's), not a cancellation the caller asked for.
        TaskCanceledException { InnerException: TimeoutException } => true,
        _ => false,
    };

    /// <summary>The failure's message and those of its causes, each once: "An error occurred while sending the request: Connection refused".</summary>
    public static string Describe(Exception e)
    {
        var messages = new List<string>();
        for (var cause = e; cause is not null && messages.Count < 4; cause = cause.InnerException)
        {
            var message = cause.Message.TrimEnd('.');
            if (!messages.Any(m => m.Contains(message, StringComparison.Ordinal)))
            {
                messages.Add(message);
            }
        }

        return string.Join(": ", messages);
    }
}
