using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using k8s;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Testing;

/// <summary>
/// The part of a kubelet the API server calls for a pod's log (<c>GET /containerLogs/NS/POD/CONTAINER</c>, with
/// <c>follow</c>), on 127.0.0.1 over HTTPS with the serving certificate tests/k8s/control-plane.sh made for it (the API
/// server checks it against the cluster's CA), and a Node whose address and kubelet port lead there. Pods bound to the
/// node (<see cref="PodSimulatorOptions.Kubelet"/>) have their logs served from what <see cref="LogOf"/> is given: so
/// <c>kubectl logs</c> and <c>kubectl logs -f</c> go through the real API server's proxy, as on a cluster.
/// </summary>
public sealed class StandInKubelet : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly IKubernetes _client;
    private readonly ConcurrentDictionary<string, PodLog> _logs = new(StringComparer.Ordinal);

    private StandInKubelet(WebApplication app, IKubernetes client, string nodeName) => (_app, _client, NodeName) = (app, client, nodeName);

    /// <summary>The Node pods are bound to for their logs to come here.</summary>
    public string NodeName { get; }

    public static async Task<StandInKubelet> StartAsync(ControlPlane controlPlane, CancellationToken cancellation = default)
    {
        var pki = Path.Combine(controlPlane.Directory, "pki");
        using var pem = X509Certificate2.CreateFromPemFile(Path.Combine(pki, "kubelet.crt"), Path.Combine(pki, "kubelet.key"));
        // Exported and loaded again: SslStream on Linux wants a certificate whose key it can use as a server's.
        var certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
        var app = builder.Build();
        var kubelet = new StandInKubelet(app, controlPlane.AdminClient, "stand-in-kubelet-" + Guid.NewGuid().ToString("N")[..8]);
        app.MapGet("/containerLogs/{ns}/{pod}/{container}", (HttpContext context, string ns, string pod, string container) =>
            kubelet.LogOf(ns, pod, container).ServeAsync(context, context.Request.Query["follow"] == "true"));
        await app.StartAsync(cancellation);
        var port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        await kubelet.RegisterNodeAsync(port, cancellation);
        return kubelet;
    }

    /// <summary>The log of a pod's container: appended to while it runs, completed when it ends.</summary>
    public PodLog LogOf(string ns, string pod, string container) => _logs.GetOrAdd($"{ns}/{pod}/{container}", _ => new PodLog());

    /// <summary>Binds a Pending pod to this node, as a scheduler would.</summary>
    public Task BindAsync(V1Pod pod, CancellationToken cancellation) =>
        _client.CoreV1.CreateNamespacedPodBindingAsync(
            new V1Binding { Metadata = new V1ObjectMeta { Name = pod.Name(), NamespaceProperty = pod.Namespace() }, Target = new V1ObjectReference { Kind = "Node", Name = NodeName, ApiVersion = "v1" } },
            pod.Name(), pod.Namespace(), cancellationToken: cancellation);

    private async Task RegisterNodeAsync(int port, CancellationToken cancellation)
    {
        await _client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = NodeName } }, cancellationToken: cancellation);
        var status = new
        {
            status = new
            {
                addresses = new[] { new { type = "InternalIP", address = "127.0.0.1" } },
                // The API spells this one field "Port", which a camelCase serializer would not write.
                daemonEndpoints = new { kubeletEndpoint = new Dictionary<string, int> { ["Port"] = port } },
                conditions = new[] { new { type = "Ready", status = "True", reason = "StandIn", message = "serves container logs only" } },
            },
        };
        var patched = await _client.CoreV1.PatchNodeStatusAsync(new V1Patch(status, V1Patch.PatchType.MergePatch), NodeName, cancellationToken: cancellation);
        if (patched.Status?.DaemonEndpoints?.KubeletEndpoint?.Port != port)
        {
            throw new InvalidOperationException($"node {NodeName} did not take its kubelet port {port}: {KubernetesJson.Serialize(patched.Status)}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var log in _logs.Values)
        {
            log.Complete();
        }

        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            await _client.CoreV1.DeleteNodeAsync(NodeName);
        }
        catch (k8s.Autorest.HttpOperationException)
        {
            // The control plane went first.
        }
    }

    /// <summary>One container's log: text appended as the process writes it; readers that follow wait for more until it completes.</summary>
    public sealed class PodLog
    {
        private readonly object _gate = new();
        private readonly List<byte[]> _chunks = [];
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private bool _completed;

        public void Append(string text)
        {
            lock (_gate)
            {
                _chunks.Add(Encoding.UTF8.GetBytes(text));
                Signal();
            }
        }

        public void Complete()
        {
            lock (_gate)
            {
                _completed = true;
                Signal();
            }
        }

        private void Signal()
        {
            _changed.TrySetResult();
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        internal async Task ServeAsync(HttpContext context, bool follow)
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            var sent = 0;
            while (true)
            {
                byte[][] pending;
                bool completed;
                Task changed;
                lock (_gate)
                {
                    pending = _chunks.Skip(sent).ToArray();
                    (completed, changed) = (_completed, _changed.Task);
                }

                foreach (var chunk in pending)
                {
                    await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                }

                sent += pending.Length;
                await context.Response.Body.FlushAsync(context.RequestAborted);
                if (!follow || completed)
                {
                    return;
                }

                await changed.WaitAsync(context.RequestAborted);
            }
        }
    }
}
