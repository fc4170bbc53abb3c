using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using BatchRunner.Kubernetes.Testing;
using k8s;
using k8s.Models;

namespace BatchRunner.Charts.Tests.Images;

/// <summary>
/// A real node for the test control plane: the kubelet built from the control plane's own Debian source
/// (tests/k8s/build-kubelet.sh) running pods in Debian's containerd and runc, on a bridge of its own (Debian's CNI
/// plugins) at <see cref="Gateway"/>. The images it runs are the podman-built ones, handed to containerd. The control
/// plane runs no scheduler, so pods of the namespace given are bound to this node as they appear. Everything it makes
/// (processes, bridge, folders) goes when it is disposed.
/// </summary>
internal sealed class RealKubelet : IAsyncDisposable
{
    /// <summary>The host's address on the pods' bridge: what pods reach the host's servers at.</summary>
    public const string Gateway = "10.231.0.1";
    private const string Bridge = "brk0";
    private const string PauseImage = "registry.k8s.io/pause:batchrunner";

    private readonly string _root;
    private readonly List<Process> _processes = [];
    private readonly StringBuilder _log = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _binding = Task.CompletedTask;

    private RealKubelet(string root, string nodeName) => (_root, NodeName) = (root, nodeName);

    public string NodeName { get; }

    /// <summary>What containerd and the kubelet said, the end of it.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.Length <= 20_000 ? _log.ToString() : "…" + _log.ToString(_log.Length - 20_000, 20_000);
            }
        }
    }

    /// <summary>Starts containerd and the kubelet, hands them <paramref name="images"/>, and waits for the node to be Ready.</summary>
    public static async Task<RealKubelet> StartAsync(ControlPlane controlPlane, string podNamespace, params string[] images)
    {
        var built = Programs.Run(Path.Combine(Helm.RepoRoot, "tests", "k8s", "build-kubelet.sh"), [], TimeSpan.FromMinutes(30));
        Assert.True(built.ExitCode == 0, $"tests/k8s/build-kubelet.sh: {built}");
        var bin = built.Output.Trim();

        // Short: containerd's socket path must fit in a unix socket address.
        var root = Directory.CreateDirectory(Path.Combine("/run", "brk-" + Guid.NewGuid().ToString("N")[..6])).FullName;
        var kubelet = new RealKubelet(root, "node-" + Path.GetFileName(root));
        try
        {
            await kubelet.StartContainerdAsync(bin, images);
            kubelet.StartKubelet(bin, controlPlane);
            await Eventually.TrueAsync(async () =>
            {
                var nodes = await controlPlane.AdminClient.CoreV1.ListNodeAsync(fieldSelector: $"metadata.name={kubelet.NodeName}");
                return nodes.Items.SingleOrDefault()?.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;
            }, TimeSpan.FromSeconds(90), $"node {kubelet.NodeName} Ready");
            kubelet._binding = kubelet.BindPodsAsync(controlPlane.AdminClient, podNamespace, kubelet._stop.Token);
            return kubelet;
        }
        catch (Exception e)
        {
            // What containerd and the kubelet said up to the failure, not up to the start of the wait.
            var log = kubelet.Log;
            await kubelet.DisposeAsync();
            throw new Xunit.Sdk.XunitException($"{e.Message}\n--- containerd and kubelet ---\n{log}");
        }
    }

    private async Task StartContainerdAsync(string bin, string[] images)
    {
        var cni = Directory.CreateDirectory(Path.Combine(_root, "cni")).FullName;
        await File.WriteAllTextAsync(Path.Combine(cni, "10-batchrunner.conflist"), $$"""
            {"cniVersion": "0.4.0", "name": "batchrunner", "plugins": [
              {"type": "bridge", "bridge": "{{Bridge}}", "isGateway": true, "ipMasq": false,
               "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.0.0/24", "gateway": "{{Gateway}}"}]], "dataDir": "{{_root}}/ipam"} },
              {"type": "loopback"}]}
            """);
        // The bridge and its address exist before any pod, so the host's relays can listen on it from the start.
        // One left by a test run that was killed goes first.
        await RunAsync("sh", "-c", $"ip link delete {Bridge} 2>/dev/null; true");
        await RunAsync("ip", "link", "add", Bridge, "type", "bridge");
        await RunAsync("ip", "addr", "add", Gateway + "/24", "dev", Bridge);
        await RunAsync("ip", "link", "set", Bridge, "up");

        var config = Path.Combine(_root, "containerd.toml");
        await File.WriteAllTextAsync(config, $$"""
            version = 2
            root = "{{_root}}/containerd/root"
            state = "{{_root}}/containerd/state"
            [grpc]
              address = "{{Socket}}"
            [plugins."io.containerd.grpc.v1.cri"]
              sandbox_image = "{{PauseImage}}"
              # This machine's containers may not lower their OOM score below the runtime's own.
              restrict_oom_score_adj = true
              [plugins."io.containerd.grpc.v1.cri".containerd]
                snapshotter = "overlayfs"
                default_runtime_name = "runc"
                [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
                  runtime_type = "io.containerd.runc.v2"
                  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                    SystemdCgroup = false
              [plugins."io.containerd.grpc.v1.cri".cni]
                bin_dir = "/usr/lib/cni"
                conf_dir = "{{cni}}"
            """);
        Start("containerd", "--config", config);
        await Eventually.TrueAsync(() => Task.FromResult(File.Exists(Socket)), TimeSpan.FromSeconds(30), $"containerd's socket {Socket}");

        // The sandbox's pause image from the program built from the Kubernetes source, then the images podman built.
        var pauseRoot = Directory.CreateDirectory(Path.Combine(_root, "pause-image")).FullName;
        File.Copy(Path.Combine(bin, "pause"), Path.Combine(pauseRoot, "pause"));
        var imported = Programs.Run("sh", ["-c", $"tar -C '{pauseRoot}' -c pause | podman import --quiet --change 'ENTRYPOINT [\"/pause\"]' - {PauseImage}"],
            TimeSpan.FromMinutes(2), new Dictionary<string, string> { ["CONTAINERS_CONF"] = Podman.ContainersConf });
        Assert.True(imported.ExitCode == 0, $"the pause image: {imported}");
        foreach (var image in images.Prepend(PauseImage))
        {
            var archive = Path.Combine(_root, "image.tar");
            var saved = await Podman.RunAsync(["save", "--format", "docker-archive", "-o", archive, image], TimeSpan.FromMinutes(5));
            Assert.True(saved.ExitCode == 0, $"podman save {image}: {saved}");
            await RunAsync("ctr", "--address", Socket, "--namespace", "k8s.io", "images", "import", archive);
            File.Delete(archive);
            // podman names its own builds localhost/NAME; the kubelet asks for docker.io/NAME.
            var local = image.Contains('/', StringComparison.Ordinal) && !image.Split('/')[0].Contains('.', StringComparison.Ordinal) ? "localhost/" + image : image;
            if (local != image)
            {
                await RunAsync("ctr", "--address", Socket, "--namespace", "k8s.io", "images", "tag", "--force", local, "docker.io/" + image);
            }
        }
    }

    private string Socket => Path.Combine(_root, "containerd.sock");

    private void StartKubelet(string bin, ControlPlane controlPlane)
    {
        var kubeletRoot = Directory.CreateDirectory(Path.Combine(_root, "kubelet")).FullName;
        Start(Path.Combine(bin, "kubelet"),
            "--kubeconfig=" + controlPlane.AdminKubeconfigPath, "--hostname-override=" + NodeName, "--node-ip=" + Gateway,
            "--container-runtime=remote", "--container-runtime-endpoint=unix://" + Socket, "--runtime-request-timeout=5m",
            "--root-dir=" + kubeletRoot, "--cert-dir=" + Path.Combine(kubeletRoot, "pki"),
            // This machine's cgroups are driven by no systemd of the kubelet's, and the host's swap is the host's.
            "--cgroup-driver=cgroupfs", "--cgroups-per-qos=false", "--enforce-node-allocatable=", "--fail-swap-on=false",
            "--port=" + ChartedControllerTests.FreePort(), "--read-only-port=0", "--healthz-port=0", "--anonymous-auth=true", "--authorization-mode=AlwaysAllow",
            // The images were handed over, never pulled: they must never be collected or evicted for disk.
            "--image-gc-high-threshold=100", "--image-gc-low-threshold=99", "--eviction-hard=nodefs.available<1%,imagefs.available<1%",
            "--volume-plugin-dir=" + Path.Combine(kubeletRoot, "volume-plugins"), "--max-pods=20", "--v=1");
    }

    /// <summary>What a scheduler would do here: every pod of the namespace that has no node yet goes to this one.</summary>
    private async Task BindPodsAsync(IKubernetes client, string podNamespace, CancellationToken cancellation)
    {
        while (!cancellation.IsCancellationRequested)
        {
            try
            {
                foreach (var pod in (await client.CoreV1.ListNamespacedPodAsync(podNamespace, fieldSelector: "spec.nodeName=", cancellationToken: cancellation)).Items)
                {
                    await client.CoreV1.CreateNamespacedPodBindingAsync(new V1Binding
                    {
                        Metadata = new V1ObjectMeta { Name = pod.Name(), NamespaceProperty = podNamespace },
                        Target = new V1ObjectReference { Kind = "Node", Name = NodeName },
                    }, pod.Name(), podNamespace, cancellationToken: cancellation);
                }
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                // Stopped while a list or a binding was on its way: the test is over.
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A pod deleted or bound meanwhile: the next look sees it as it is.
            }

            try
            {
                await Task.Delay(250, cancellation);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Start(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        var name = Path.GetFileName(program);
        process.OutputDataReceived += (_, line) => Keep(name, line.Data);
        process.ErrorDataReceived += (_, line) => Keep(name, line.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
    }

    private void Keep(string name, string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.Append(name).Append(": ").AppendLine(line);
            }
        }
    }

    private static async Task RunAsync(string program, params string[] args)
    {
        var result = await Task.Run(() => Programs.Run(program, args, TimeSpan.FromMinutes(5)));
        Assert.True(result.ExitCode == 0, $"{program} {string.Join(' ', args)}: {result}");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _binding;
        // The kubelet first, so it starts nothing more; then every container, then containerd and its shims.
        foreach (var process in Enumerable.Reverse(_processes))
        {
            if (process == _processes[0] && File.Exists(Socket))
            {
                Programs.Run("sh", ["-c", $"for t in $(ctr --address {Socket} -n k8s.io tasks ls -q); do ctr --address {Socket} -n k8s.io tasks kill -s SIGKILL $t; done; sleep 1"],
                    TimeSpan.FromMinutes(1));
            }

            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }

        Programs.Run("sh", ["-c", $"pkill -9 -f '[c]ontainerd-shim-runc-v2 .*{Path.GetFileName(_root)}' ; ip link delete {Bridge} 2>/dev/null; " +
            $"grep -o ' {_root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l; rm -rf '{_root}'"], TimeSpan.FromMinutes(1));
        _stop.Dispose();
    }
}

/// <summary>Relays connections made to one address to another: pods reach a server of the host's loopback through it.</summary>
internal sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public TcpRelay(IPAddress address, IPEndPoint upstream)
    {
        _upstream = upstream;
        _listener = new TcpListener(address, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using (client)
        using (var upstream = new TcpClient())
        {
            try
            {
                await upstream.ConnectAsync(_upstream, _stop.Token);
                var (down, up) = (client.GetStream(), upstream.GetStream());
                await Task.WhenAny(down.CopyToAsync(up, _stop.Token), up.CopyToAsync(down, _stop.Token));
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
            {
                // Either side went away: so does the other.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
