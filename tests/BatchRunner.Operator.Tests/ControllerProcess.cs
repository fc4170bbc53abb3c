using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace BatchRunner.Operator.Tests;

/// <summary>One replica of the controller as its own process, on a loopback port, with its log kept for assertions.</summary>
public sealed class ControllerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _log = new();
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private ControllerProcess(Process process, string identity, int port)
    {
        _process = process;
        Identity = identity;
        Url = $"http://127.0.0.1:{port}";
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Identity { get; }
    public string Url { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public string Log => string.Join('\n', _log);

    public static ControllerProcess Start(string kubeconfig, string identity, params string[] extraArgs) =>
        Start(kubeconfig, identity, new Dictionary<string, string>(), extraArgs);

    public static ControllerProcess Start(string kubeconfig, string identity, IReadOnlyDictionary<string, string> environment, params string[] extraArgs)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
        {
            ControllerDll(), "--urls", $"http://127.0.0.1:{port}",
            $"--BatchRunner:Kubernetes:Kubeconfig={kubeconfig}",
            $"--BatchRunner:LeaderElection:Identity={identity}",
        }.Concat(extraArgs))
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        return new ControllerProcess(Process.Start(start)!, identity, port);
    }

    public async Task<(HttpStatusCode Status, string Body)> GetAsync(string path)
    {
        using var response = await Http.GetAsync(Url + path);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The value of an unlabelled metric on /metrics (its sample line, not its HELP text), or null when absent.</summary>
    public async Task<double?> MetricAsync(string name)
    {
        var (_, body) = await GetAsync("/metrics");
        var sample = body.Split('\n').FirstOrDefault(line => line.StartsWith(name + " ", StringComparison.Ordinal));
        return sample is null ? null : double.Parse(sample[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>SIGTERM, as Kubernetes stops a pod (rolling update, drain): a clean shutdown that releases the lease.</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (_process.HasExited)
        {
            return;
        }

        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(grace ?? TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>kill -9: no clean shutdown, no lease release.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Stops as a pod is stopped, so the lease is free for the next test's controller; kills what does not stop.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
        {
            // Did not stop in time, or had already gone: kill -9 below.
        }

        await KillAsync();
        _process.Dispose();
    }

    private void Keep(string? line)
    {
        if (line is not null)
        {
            _log.Enqueue(line);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The controller as built with these tests (the newer of the Release and Debug outputs).</summary>
    private static string ControllerDll() =>
        new[] { "Release", "Debug" }
            .Select(c => Path.Combine(OperatorFixture.RepoRoot, "controller", "BatchRunner.Controller", "bin", c, "net10.0", "batchrunner-controller.dll"))
            .Where(File.Exists)
            .OrderByDescending(File.GetLastWriteTimeUtc)
            .FirstOrDefault() ?? throw new InvalidOperationException("batchrunner-controller.dll is not built");
}
