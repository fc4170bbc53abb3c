using System.Diagnostics;
using System.Text;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace BatchRunner.Kubernetes.Testing;

/// <summary>
/// A real Kubernetes 1.20 control plane (etcd, kube-apiserver, kube-controller-manager) on 127.0.0.1, started by
/// <c>tests/k8s/control-plane.sh</c> in a fresh temporary folder and stopped on dispose. There is no kubelet and
/// no scheduler: Pods stay Pending unless a <see cref="PodSimulator"/> runs. The binaries are built once and
/// cached by <c>tests/k8s/build-control-plane.sh</c> (about 10 minutes the first time on a machine).
/// </summary>
public sealed class ControlPlane : IAsyncDisposable
{
    private static readonly TimeSpan TokenWait = TimeSpan.FromSeconds(30);

    private readonly string scripts;
    private bool disposed;

    private ControlPlane(string scripts, string directory)
    {
        this.scripts = scripts;
        Directory = directory;
        AdminKubeconfigPath = Path.Combine(directory, "admin.kubeconfig");
        var env = File.ReadAllLines(Path.Combine(directory, "env"))
            .Select(line => line.Split('=', 2))
            .ToDictionary(pair => pair[0], pair => pair[1]);
        Server = new Uri(env["SERVER"]);
        AdminClient = CreateClient(AdminKubeconfigPath);
    }

    /// <summary>The folder holding the certificates, kubeconfigs, <c>env</c> and the logs (<c>*.log</c>).</summary>
    public string Directory { get; }

    /// <summary>A kubeconfig for <c>admin</c>, a member of <c>system:masters</c> (RBAC does not apply to it).</summary>
    public string AdminKubeconfigPath { get; }

    /// <summary>The API server's URL, <c>https://127.0.0.1:PORT</c>.</summary>
    public Uri Server { get; }

    /// <summary>A client with the admin's credentials.</summary>
    public IKubernetes AdminClient { get; }

    /// <summary>Builds the control plane if needed, starts one in a new temporary folder and waits until it is ready.</summary>
    public static async Task<ControlPlane> StartAsync(CancellationToken cancellationToken = default)
    {
        var scripts = FindScripts();
        var directory = System.IO.Directory.CreateTempSubdirectory("batchrunner-k8s-").FullName;
        try
        {
            // --owner: if this process dies without disposing, the script's watchdog stops the control plane.
            await RunScriptAsync(scripts, cancellationToken, "start", directory, "--owner", Environment.ProcessId.ToString());
            return new ControlPlane(scripts, directory);
        }
        catch
        {
            await RunScriptAsync(scripts, CancellationToken.None, "stop", directory);
            throw;
        }
    }

    /// <summary>A client for a kubeconfig file, e.g. one from <see cref="CreateServiceAccountKubeconfigAsync"/>.</summary>
    public static IKubernetes CreateClient(string kubeconfigPath) =>
        new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfigPath));

    /// <summary>Runs kubectl as the admin in <paramref name="workingDirectory"/>; throws with its output when it fails.</summary>
    public async Task KubectlAsync(string workingDirectory, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("kubectl") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--kubeconfig", AdminKubeconfigPath }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"kubectl {string.Join(' ', args)}: {await error}{await output}");
        }
    }

    /// <summary>
    /// Creates a namespace and waits until Pods can be created in it: in 1.20 the ServiceAccount admission plugin
    /// rejects Pods until the namespace's <c>default</c> ServiceAccount has its token Secret.
    /// </summary>
    public async Task CreateNamespaceAsync(string name, CancellationToken cancellationToken = default)
    {
        await AdminClient.CoreV1.CreateNamespaceAsync(
            new V1Namespace { Metadata = new V1ObjectMeta { Name = name } }, cancellationToken: cancellationToken);
        await WaitForTokenAsync(name, "default", cancellationToken);
    }

    /// <summary>
    /// Creates the ServiceAccount unless it exists, waits for the token Secret that 1.20's token controller makes
    /// for it, and writes a kubeconfig that authenticates as it (namespace <paramref name="namespace"/> by default).
    /// Returns the kubeconfig's path. The account can do only what RBAC grants it.
    /// </summary>
    public async Task<string> CreateServiceAccountKubeconfigAsync(
        string @namespace, string serviceAccount, CancellationToken cancellationToken = default)
    {
        try
        {
            await AdminClient.CoreV1.CreateNamespacedServiceAccountAsync(
                new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = serviceAccount } }, @namespace,
                cancellationToken: cancellationToken);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict)
        {
            // It exists already: use it.
        }

        var token = await WaitForTokenAsync(@namespace, serviceAccount, cancellationToken);
        var path = Path.Combine(Directory, $"sa-{@namespace}-{serviceAccount}.kubeconfig");
        var ca = Convert.ToBase64String(await File.ReadAllBytesAsync(Path.Combine(Directory, "pki", "ca.crt"), cancellationToken));
        await File.WriteAllTextAsync(path, $$"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: batchrunner-test
              cluster:
                server: {{Server.GetLeftPart(UriPartial.Authority)}}
                certificate-authority-data: {{ca}}
            users:
            - name: {{serviceAccount}}
              user:
                token: {{token}}
            contexts:
            - name: {{serviceAccount}}
              context:
                cluster: batchrunner-test
                user: {{serviceAccount}}
                namespace: {{@namespace}}
            current-context: {{serviceAccount}}

            """, cancellationToken);
        return path;
    }

    /// <summary>
    /// Kills the API server (SIGKILL, as a crash), keeps it down for <paramref name="down"/>, and starts it again on the
    /// same port over the same etcd, returning once it is ready: every object and resourceVersion survives, every
    /// connection and watch of every client is cut.
    /// </summary>
    public Task RestartApiServerAsync(TimeSpan down, CancellationToken cancellationToken = default) =>
        RunScriptAsync(scripts, cancellationToken, "restart-apiserver", Directory, down.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Stops every process of the control plane and deletes its folder.</summary>
    public async ValueTask DisposeAsync()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        AdminClient.Dispose();
        await RunScriptAsync(scripts, CancellationToken.None, "stop", Directory);
    }

    private async Task<string> WaitForTokenAsync(string @namespace, string serviceAccount, CancellationToken cancellationToken)
    {
        string? token = null;
        await Eventually.TrueAsync(async () =>
        {
            var account = await AdminClient.CoreV1.ReadNamespacedServiceAccountAsync(
                serviceAccount, @namespace, cancellationToken: cancellationToken);
            // The token controller creates a Secret "<account>-token-<random>" of type
            // kubernetes.io/service-account-token, then lists it in the account's `secrets`.
            foreach (var reference in account.Secrets ?? [])
            {
                var secret = await AdminClient.CoreV1.ReadNamespacedSecretAsync(
                    reference.Name, @namespace, cancellationToken: cancellationToken);
                if (secret.Type == "kubernetes.io/service-account-token" && secret.Data?.TryGetValue("token", out var bytes) == true)
                {
                    token = Encoding.UTF8.GetString(bytes);
                    return true;
                }
            }

            return false;
        }, TokenWait, $"the token Secret of ServiceAccount {@namespace}/{serviceAccount}", cancellationToken);
        return token!;
    }

    private static async Task RunScriptAsync(string scripts, CancellationToken cancellationToken, params string[] arguments)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(scripts, "control-plane.sh"));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start bash");
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var error = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"control-plane.sh {string.Join(' ', arguments)} exited with {process.ExitCode}:\n{await error}{await output}");
        }
    }

    /// <summary>tests/k8s of the checkout this assembly was built from (or $BATCHRUNNER_K8S_SCRIPTS).</summary>
    private static string FindScripts()
    {
        if (Environment.GetEnvironmentVariable("BATCHRUNNER_K8S_SCRIPTS") is { Length: > 0 } configured)
        {
            return configured;
        }

        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, "tests", "k8s");
            if (File.Exists(Path.Combine(candidate, "control-plane.sh")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException(
            $"no tests/k8s/control-plane.sh above {AppContext.BaseDirectory}; set BATCHRUNNER_K8S_SCRIPTS");
    }
}
