using System.Net;
using BatchRunner.Faults.Testing;
using Xunit.Abstractions;

namespace BatchRunner.Operator.Tests;

/// <summary>What the fault scenarios share: proxies in front of the servers, a kubeconfig through one, their report.</summary>
public static class FaultRig
{
    /// <summary>A proxy in front of the test control plane's API server.</summary>
    public static FaultProxy ApiServerProxy(OperatorFixture fixture) =>
        FaultProxy.Start(new IPEndPoint(IPAddress.Loopback, fixture.ControlPlane.Server.Port));

    /// <summary>A proxy in front of a server at a loopback URL (fauxqs, a stub).</summary>
    public static FaultProxy ProxyFor(string url) => FaultProxy.Start(new IPEndPoint(IPAddress.Loopback, new Uri(url).Port));

    /// <summary>The controller's kubeconfig, reaching the API server through <paramref name="proxy"/> (the server certificate names 127.0.0.1 either way).</summary>
    public static Task<string> KubeconfigThroughAsync(OperatorFixture fixture, FaultProxy proxy, string name) =>
        KubeconfigThroughAsync(fixture, proxy.Port, name);

    /// <summary>An HTTPS proxy in front of the API server, its certificate signed by the control plane's CA.</summary>
    public static Task<HttpsFaultProxy> HttpsApiServerProxyAsync(OperatorFixture fixture) =>
        HttpsFaultProxy.StartAsync(fixture.ControlPlane.Server, Path.Combine(fixture.ControlPlane.Directory, "pki", "ca.crt"), Path.Combine(fixture.ControlPlane.Directory, "pki", "ca.key"));

    /// <summary>The controller's kubeconfig, reaching the API server through a proxy on <paramref name="port"/> of 127.0.0.1.</summary>
    public static async Task<string> KubeconfigThroughAsync(OperatorFixture fixture, int port, string name)
    {
        var text = await File.ReadAllTextAsync(fixture.ControllerKubeconfig);
        var path = Path.Combine(fixture.ControlPlane.Directory, $"faults-{name}.kubeconfig");
        await File.WriteAllTextAsync(path, text.Replace(
            fixture.ControlPlane.Server.GetLeftPart(UriPartial.Authority), $"https://127.0.0.1:{port}", StringComparison.Ordinal));
        return path;
    }

    /// <summary>The controller's bearer token, which no log line may carry.</summary>
    public static async Task<string> ControllerTokenAsync(OperatorFixture fixture) =>
        System.Text.RegularExpressions.Regex.Match(await File.ReadAllTextAsync(fixture.ControllerKubeconfig), @"token:\s*(\S+)").Groups[1].Value;

    /// <summary>Messages still in a queue, visible or in flight.</summary>
    public static async Task<int> InFlightAsync(QueueEmulator queues, string queue)
    {
        var left = await queues.Client.GetQueueAttributesAsync(new Amazon.SQS.Model.GetQueueAttributesRequest(queue, ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]));
        return left.ApproximateNumberOfMessages + left.ApproximateNumberOfMessagesNotVisible;
    }

    /// <summary>How many BatchJobs a namespace holds.</summary>
    public static async Task<int> BatchJobCountAsync(OperatorFixture fixture, string ns)
    {
        var listed = await k8s.CustomObjectsOperationsExtensions.ListNamespacedCustomObjectAsync(fixture.Admin.CustomObjects, "batchrunner.io", "v1alpha1", ns, "batchjobs");
        return (listed is System.Text.Json.JsonElement element ? element : System.Text.Json.JsonSerializer.SerializeToElement(listed)).GetProperty("items").GetArrayLength();
    }

    public static string Report(string server, FaultProxy proxy) =>
        $"{server}: {string.Join(", ", proxy.Injected.OrderBy(f => f.Key).Select(f => $"{f.Key} {f.Value}"))}; {proxy.Connections} connections";

    /// <summary>Stops the controller and writes its log to the test's output.</summary>
    public sealed class Logged(ControllerProcess controller, ITestOutputHelper output) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            output.WriteLine($"--- controller {controller.Identity} log ---\n{controller.Log}");
            await controller.DisposeAsync();
        }
    }
}
