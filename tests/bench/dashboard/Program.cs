using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using BatchRunner.Kubernetes.Testing;

// --count BatchJobs (default 5,000, in 10 namespaces) on a Kubernetes 1.20 control plane; a controller that stands
// by (another identity holds its Lease, so it only serves the dashboard from its informers) answers the dashboard's
// pages, each asked --rounds times; the peer is `kubectl get batchjobs --all-namespaces` over the same objects, in
// the same run. Prints medians and ratios; no pass/fail.
//   BatchRunner.DashboardBenchmark [--count N] [--rounds R]
var count = Option("--count", 5000);
var rounds = Option("--rounds", 20);
var root = FindRepoRoot();

await using var controlPlane = await ControlPlane.StartAsync();
await Kubectl("apply", "-f", "manifests/controller/namespace.yaml", "-f", "manifests/crds/", "-f", "manifests/rbac/");
await Kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/batchjobs.batchrunner.io", "crd/queues.batchrunner.io");
var kubeconfig = await controlPlane.CreateServiceAccountKubeconfigAsync("batchrunner-system", "batchrunner-controller");
for (var n = 0; n < 10; n++)
{
    await controlPlane.CreateNamespaceAsync($"team-{n}");
}

var applying = Stopwatch.StartNew();
var manifests = new StringBuilder();
for (var i = 0; i < count; i++)
{
    manifests.Append(CultureInfo.InvariantCulture, $$$"""
        ---
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {name: sweep-{{{i:00000}}}, namespace: team-{{{i % 10}}}}
        spec:
          image: busybox:1.36
          command: [/bin/sh, -c, 'echo "$BATCHRUNNER_PARAMS"']
          parallelism: 2
          sweep:
            grid: {rate: [0.5, 0.9], servers: [1, 2, 4]}

        """);
}

var file = Path.Combine(controlPlane.Directory, "batchjobs.yaml");
File.WriteAllText(file, manifests.ToString());
await Kubectl("apply", "-f", file);
var applied = applying.Elapsed;

// The Lease is another's for an hour: this controller stands by, as a second replica does, and serves the dashboard.
var now = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture);
var lease = Path.Combine(controlPlane.Directory, "lease.yaml");
File.WriteAllText(lease, $$"""
    apiVersion: coordination.k8s.io/v1
    kind: Lease
    metadata: {name: bench-dashboard, namespace: batchrunner-system}
    spec: {holderIdentity: elsewhere, leaseDurationSeconds: 3600, acquireTime: "{{now}}", renewTime: "{{now}}"}
    """);
await Kubectl("apply", "-f", lease);

var port = 18000 + Random.Shared.Next(1000);
var dll = Environment.GetEnvironmentVariable("BENCH_CONTROLLER_DLL") ?? Path.Combine(root, "controller", "BatchRunner.Controller", "bin", "Release", "net10.0", "batchrunner-controller.dll");
var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
foreach (var arg in new[] { dll, "--urls", $"http://127.0.0.1:{port}", $"--BatchRunner:Kubernetes:Kubeconfig={kubeconfig}", "--BatchRunner:LeaderElection:Identity=bench", "--BatchRunner:LeaderElection:LeaseName=bench-dashboard" })
{
    start.ArgumentList.Add(arg);
}

using var controller = Process.Start(start)!;
controller.OutputDataReceived += (_, _) => { };
controller.ErrorDataReceived += (_, _) => { };
controller.BeginOutputReadLine();
controller.BeginErrorReadLine();
using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
var syncing = Stopwatch.StartNew();
await Eventually.TrueAsync(async () =>
{
    try
    {
        return Regex.Match(await http.GetStringAsync("/ui/"), @"<b>(\d+)</b> in all") is { Success: true } m && int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) == count;
    }
    catch (HttpRequestException)
    {
        return false;
    }
}, TimeSpan.FromMinutes(5), $"the dashboard shows {count} BatchJobs");
var synced = syncing.Elapsed;

var pages = new (string Name, string Path)[]
{
    ("list, first page", "/ui/batchjobs"),
    ("list, last page", $"/ui/batchjobs?page={(count + 49) / 50}"),
    ("list, filtered", "/ui/batchjobs?namespace=team-3&q=sweep-01"),
    ("list, live part", "/ui/batchjobs?live=1"),
    ("overview", "/ui/"),
    ("a BatchJob's page", "/ui/namespaces/team-7/batchjobs/sweep-00007"),
};
var figures = new List<(string Name, double Median, double P90, long Bytes)>();
foreach (var (name, path) in pages)
{
    var times = new List<double>();
    long bytes = 0;
    for (var round = 0; round < rounds + 2; round++)
    {
        var watch = Stopwatch.StartNew();
        var body = await http.GetByteArrayAsync(path);
        if (round >= 2)
        {
            times.Add(watch.Elapsed.TotalMilliseconds);
        }

        bytes = body.Length;
    }

    figures.Add((name, Median(times), Percentile(times, 0.9), bytes));
}

var peer = new List<double>();
for (var round = 0; round < Math.Max(3, rounds / 4); round++)
{
    var watch = Stopwatch.StartNew();
    await Kubectl("get", "batchjobs", "--all-namespaces", "-o", "name");
    peer.Add(watch.Elapsed.TotalMilliseconds);
}

controller.Refresh();
var kubectl = Median(peer);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
    dashboard: {count} BatchJobs in 10 namespaces (Kubernetes 1.20 control plane on 127.0.0.1), a standby controller serving /ui/; medians of {rounds} requests
      applied with kubectl in {applied.TotalSeconds:F1} s; the dashboard showed all of them {synced.TotalSeconds:F1} s after the controller started
    {string.Join('\n', figures.Select(f => $"  {f.Name,-20} {f.Median,8:F1} ms  (p90 {f.P90:F1} ms, {f.Bytes / 1024.0:F0} KiB)   ratio to kubectl {f.Median / kubectl:0.00000}"))}
      peer: kubectl get batchjobs --all-namespaces -o name  {kubectl:F1} ms (median of {peer.Count})
      controller memory (RSS) {controller.WorkingSet64 / 1024.0 / 1024.0:F0} MiB
    """));
controller.Kill(entireProcessTree: true);
return 0;

Task Kubectl(params string[] args) => controlPlane.KubectlAsync(root, args);

int Option(string name, int fallback) =>
    Array.IndexOf(args, name) is var at and >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;

static double Median(IEnumerable<double> values) => Percentile(values, 0.5);

static double Percentile(IEnumerable<double> values, double p)
{
    var sorted = values.Order().ToList();
    var at = p * (sorted.Count - 1);
    var (low, high) = ((int)Math.Floor(at), (int)Math.Ceiling(at));
    return sorted[low] + (sorted[high] - sorted[low]) * (at - low);
}

static string FindRepoRoot()
{
    for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
    {
        if (File.Exists(Path.Combine(folder.FullName, "BatchRunner.sln")))
        {
            return folder.FullName;
        }
    }

    throw new InvalidOperationException("BatchRunner.sln not found");
}
