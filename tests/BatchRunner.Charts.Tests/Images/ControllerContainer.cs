using System.Text.Json.Nodes;

namespace BatchRunner.Charts.Tests.Images;

/// <summary>
/// The controller image run by podman as the chart's pod runs it: the rendered container's environment, its user,
/// a read-only root filesystem with the chart's volumes mounted (an emptyDir at /tmp, the prices ConfigMap's
/// files), on the host's network so the test control plane on 127.0.0.1 is reachable.
/// </summary>
internal sealed class ControllerContainer : IRunningController
{
    private const string KubeconfigPath = "/var/run/batchrunner/kubeconfig";
    private readonly string _name;
    private readonly DirectoryInfo _volumes;

    private ControllerContainer(string name, DirectoryInfo volumes) => (_name, _volumes) = (name, volumes);

    public string Log
    {
        get
        {
            var logs = Programs.Run("podman", ["logs", _name], TimeSpan.FromSeconds(30), new Dictionary<string, string> { ["CONTAINERS_CONF"] = Podman.ContainersConf });
            return logs.Output + logs.Error;
        }
    }

    /// <param name="environment">The rendered container's environment; a kubeconfig path stands in for the in-cluster account.</param>
    /// <param name="container">The rendered Deployment's container.</param>
    public static async Task<IRunningController> StartAsync(Dictionary<string, string> environment, JsonNode container)
    {
        var volumes = Directory.CreateTempSubdirectory("controller-container-");
        var running = new ControllerContainer("batchrunner-controller-" + Guid.NewGuid().ToString("N")[..8], volumes);
        var securityContext = container["securityContext"]!;
        List<string> arguments = ["run", "-d", "--name", running._name, "--pull=never", "--network", "host", "--user", securityContext["runAsUser"]!.ToString()];
        if ((bool?)securityContext["readOnlyRootFilesystem"] == true)
        {
            arguments.AddRange(["--read-only", "--read-only-tmpfs=false"]);
        }

        foreach (var mount in container["volumeMounts"]?.AsArray() ?? [])
        {
            // The chart's volumes are emptyDirs and ConfigMaps; an empty folder serves both (no prices are set here).
            var folder = Directory.CreateDirectory(Path.Combine(volumes.FullName, (string)mount!["name"]!)).FullName;
            File.SetUnixFileMode(folder, (UnixFileMode)0b111_111_111);
            arguments.AddRange(["-v", $"{folder}:{(string)mount["mountPath"]!}{((bool?)mount["readOnly"] == true ? ":ro" : "")}"]);
        }

        // The service account's kubeconfig, readable by the container's user.
        var kubeconfig = Path.Combine(volumes.FullName, "kubeconfig");
        File.Copy(environment["BatchRunner__Kubernetes__Kubeconfig"], kubeconfig);
        File.SetUnixFileMode(kubeconfig, (UnixFileMode)0b110_100_100);
        arguments.AddRange(["-v", $"{kubeconfig}:{KubeconfigPath}:ro"]);
        foreach (var (name, value) in environment)
        {
            arguments.AddRange(["-e", $"{name}={(name == "BatchRunner__Kubernetes__Kubeconfig" ? KubeconfigPath : value)}"]);
        }

        arguments.Add(BuiltImages.Controller);
        var started = await Podman.RunAsync(arguments, TimeSpan.FromMinutes(1));
        Assert.True(started.ExitCode == 0, $"podman run {BuiltImages.Controller}: {started}");
        return running;
    }

    public async ValueTask DisposeAsync()
    {
        await Podman.RunAsync("rm", "-f", "-t", "5", _name);
        _volumes.Delete(recursive: true);
    }
}
