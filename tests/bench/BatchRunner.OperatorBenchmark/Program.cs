using System.Diagnostics;
using System.Globalization;
using System.Text;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes;
using BatchRunner.Kubernetes.Dispatch;
using BatchRunner.Kubernetes.Testing;
using k8s;

// 500 BatchJobs applied at once with kubectl -> seconds until all 500 Jobs exist, against kubectl apply of 500 plain
// Job manifests, and of the 500 Jobs the controller creates, to the same API server in the same run. Prints figures;
// no pass/fail.
//   BatchRunner.OperatorBenchmark [--count N] [--rounds R] [--qps Q] [--burst B] [--workers W]
var count = Option("--count", 500);
var clientLimitLifted = false;
// Unset: the controller's default (limited until the API server shows API Priority and Fairness, then not).
var qps = Array.IndexOf(args, "--qps") is var q and >= 0 && q + 1 < args.Length ? args[q + 1] : null;
var burst = Option("--burst", 100);
var workers = Option("--workers", 4);
var rounds = Option("--rounds", 3);
var root = FindRepoRoot();
// The runtime's settings the controller's image gives it (ENV DOTNET_… in its Dockerfile), so the controller runs here
// as it runs in a cluster.
var imageRuntimeEnvironment = File.ReadLines(Path.Combine(root, "controller", "BatchRunner.Controller", "Dockerfile"))
    .Where(line => line.StartsWith("ENV DOTNET_", StringComparison.Ordinal))
    .Select(line => line["ENV ".Length..].Split('=', 2))
    .ToDictionary(pair => pair[0], pair => pair[1], StringComparer.Ordinal);

await using var controlPlane = await ControlPlane.StartAsync();
var admin = controlPlane.AdminClient;
await Kubectl("apply", "-f", "manifests/controller/namespace.yaml", "-f", "manifests/crds/", "-f", "manifests/rbac/");
await Kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/batchjobs.batchrunner.io");
var version = await admin.Version.GetCodeAsync();
var capabilities = ClusterCapabilities.FromVersion(version.Major, version.Minor);
var kubeconfig = await controlPlane.CreateServiceAccountKubeconfigAsync("batchrunner-system", "batchrunner-controller");
// The bench's own code warmed before anything is timed: the first list and watch of Jobs compiled the client's
// decoding inside the first round's first step (perf saw 0.8 CPU s of it at the end of the operator's step), and
// ahead of whichever step came first. The project turns tiered compilation off for the same reason: no methods
// recompiled in the background while a step runs.
await WarmUpAsync();
// Each round in namespaces of its own, with a controller of its own (its own Lease, so it leads at once); the
// medians over rounds are the figures, since one round's swing on two shared cores is larger than the target's margin.
var results = new List<Round>();
string? watchDecoding = null;
for (var round = 0; round < rounds; round++)
{
    results.Add(await RoundAsync(round));
}

var last = results[^1];
// Settled calls come from a round in which the operator did not go last: there the bench waits for the Job controller to
// count its Jobs (about five a second) before the next step.
var settledRound = results.FindLastIndex(r => r.CallsSettled is not null);
var settled = settledRound < 0 ? null : results[settledRound].CallsSettled;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
    operator: {count} BatchJobs applied at once until {count} Jobs exist (Kubernetes 1.20 control plane on 127.0.0.1), {rounds} round(s)
      controller client      qps {qps ?? "default (auto)"}, burst {burst}, workers {workers}{(clientLimitLifted ? "; limit lifted (the API server has API Priority and Fairness)" : "")}
      controller runtime     {(imageRuntimeEnvironment.Count == 0 ? "defaults" : string.Join(", ", imageRuntimeEnvironment.Select(e => $"{e.Key}={e.Value}")))} (the image's environment)
      batchrunner            {Median(results.Select(r => r.Operator.TotalSeconds)):F2} s   (rounds: {string.Join(", ", results.Select(r => r.Operator.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)))})
      kubectl apply of Jobs  {Median(results.Select(r => r.Kubectl.TotalSeconds)):F2} s   (rounds: {string.Join(", ", results.Select(r => r.Kubectl.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)))})
      ratio                  {Median(results.Select(r => r.Operator / r.Kubectl)):F2}×   (median of the rounds' ratios: {string.Join(", ", results.Select(r => (r.Operator / r.Kubectl).ToString("F2", CultureInfo.InvariantCulture)))}){RatioInterval()}
      same Jobs              {Median(results.Select(r => r.Operator / r.SameJobs)):F2}×   (kubectl apply of the Jobs the controller creates, plan and settings in them: {Median(results.Select(r => r.SameJobs.TotalSeconds)):F2} s; rounds {string.Join(", ", results.Select(r => (r.Operator / r.SameJobs).ToString("F2", CultureInfo.InvariantCulture)))})
      floor                  {Median(results.Select(r => r.Floor / r.Kubectl)):F2}×   (kubectl apply of the {count} BatchJobs alone, no controller running: {Median(results.Select(r => r.Floor.TotalSeconds)):F2} s)
      over the floor         {Median(results.Select(r => r.Operator / r.Floor)):F2}×   (the controller's own share: {string.Join(", ", results.Select(r => (r.Operator / r.Floor).ToString("F2", CultureInfo.InvariantCulture)))})
      controller CPU         {Median(results.Select(r => r.ControllerCpu.TotalSeconds)):F2} s until the Jobs exist   (rounds: {string.Join(", ", results.Select(r => r.ControllerCpu.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)))})
      CPU seconds (medians)  {CpuLine('A', "batchrunner")}
                             {CpuLine('B', "kubectl")}
                             {CpuLine('C', "same Jobs")}
                             {CpuLine('F', "floor")}
      last round             kubectl apply of the BatchJobs {last.Applied.TotalSeconds:F2} s; {last.ReconcilesAtJobs:F0} reconciles until the Jobs exist; {last.Time}
      watch decoding         {watchDecoding} (last round)
      API calls per BatchJob {PerBatchJob(last.CallsAtJobs)} until the Jobs exist (last round); {(settled is null ? "not settled (the operator went last in every round)" : $"{PerBatchJob(settled)} once every Job was counted and the controller is quiet (round {settledRound + 1})")}
        by call, settled     {(settled is null ? "-" : string.Join(", ", settled.Where(c => c.Value > 0).OrderByDescending(c => c.Value).Select(c => $"{c.Key} {c.Value / count:F2}")))}
    """));
return 0;

// How far the median could move with other rounds of the same machine: a percentile bootstrap over the rounds (a
// median of a few ratios that swing by ±30% each says little on its own). Seeded, so a run prints what it measured.
string RatioInterval()
{
    var ratios = results.Select(r => r.Operator / r.Kubectl).ToArray();
    if (ratios.Length < 3)
    {
        return "";
    }

    var random = new Random(18);
    var medians = Enumerable.Range(0, 10_000).Select(_ => Median(Enumerable.Range(0, ratios.Length).Select(_ => ratios[random.Next(ratios.Length)]))).Order().ToArray();
    return string.Create(CultureInfo.InvariantCulture, $"; 90% bootstrap interval of the median {medians[500]:F2}–{medians[9_499]:F2}×, {ratios.Count(r => r <= 1.5)} of {ratios.Length} rounds within 1.5×");
}

string CpuLine(char step, string label) => string.Create(CultureInfo.InvariantCulture,
    $"{label,-12} machine {Median(results.Select(r => r.Cpu[step].Machine)):F2}, API server {Median(results.Select(r => r.Cpu[step].ApiServer)):F2}, etcd {Median(results.Select(r => r.Cpu[step].Etcd)):F2}, Job controller {Median(results.Select(r => r.Cpu[step].JobController)):F2}");

async Task<Round> RoundAsync(int round)
{
    var (floorNs, operatorNs, kubectlNs, sameJobsNs) = ($"bench-floor-{round}", $"bench-operator-{round}", $"bench-kubectl-{round}", $"bench-same-{round}");
    await controlPlane.CreateNamespaceAsync(operatorNs);
    await controlPlane.CreateNamespaceAsync(kubectlNs);
    await controlPlane.CreateNamespaceAsync(sameJobsNs);

    // The floor any controller stands on: the API server taking the BatchJobs themselves, with nothing else running
    // (they are removed again before the controller starts, so it never sees them).
    await controlPlane.CreateNamespaceAsync(floorNs);
    var floorManifests = Manifests(count, i => BatchJobManifest(floorNs, i));
    var cpuAtFloor = CpuUse.Read(controlPlane.Directory);
    var floorWatch = Stopwatch.StartNew();
    await Kubectl("apply", "-f", floorManifests);
    var floorApplied = floorWatch.Elapsed;
    var floorCpu = CpuUse.Read(controlPlane.Directory) - cpuAtFloor;
    await Kubectl("delete", "namespace", floorNs, "--wait=true", "--timeout=300s");

    using var controller = StartController(kubeconfig, $"bench-{round}");
    await Eventually.TrueAsync(async () => (await admin.CoordinationV1.ReadNamespacedLeaseAsync($"bench-{round}", "batchrunner-system")).Spec.HolderIdentity == "bench",
        TimeSpan.FromSeconds(60), "the controller leads");
    // A: BatchJobs through the operator; B: the equivalent Jobs straight from kubectl, written as a person would (the
    // issue's anchor); C: the very Jobs the controller creates (the plan and settings they carry), from kubectl. In turn
    // each first, so a control plane that slows as objects pile up weighs on all alike.
    TimeSpan operatorTotal = default, operatorApplied = default, kubectlTotal = default, sameJobsTotal = default, controllerCpu = default;
    var cpu = new Dictionary<char, CpuUse> { ['F'] = floorCpu };
    Dictionary<string, double> callsAtJobs = [];
    Dictionary<string, double>? callsSettled = null;
    double reconcilesAtJobs = 0;
    var steps = new[] { 'A', 'B', 'C' };
    var order = steps.Skip(round % 3).Concat(steps.Take(round % 3)).ToArray();
    foreach (var step in order)
    {
        // Every step starts on a quiet cluster: the Job controller counts about five Jobs a second (its client's
        // default 20 calls a second), so 500 Jobs keep it creating pods for a minute and a half after their step,
        // and a step that followed without waiting would share the API server with that backlog.
        var lastStep = step == order[^1];
        if (step == 'A')
        {
            var manifests = Manifests(count, i => BatchJobManifest(operatorNs, i));
            var callsBefore = await ApiCallsAsync(controller);
            var cpuBefore = controller.Process.TotalProcessorTime;
            var reconcilesBefore = Reconciles(await new HttpClient().GetStringAsync(controller.Url + "/metrics"));
            var cpuAtStart = CpuUse.Read(controlPlane.Directory);
            var operatorWatch = Stopwatch.StartNew();
            await Kubectl("apply", "-f", manifests);
            operatorApplied = operatorWatch.Elapsed;
            await WaitForJobs(operatorNs, count, operatorWatch);
            operatorTotal = operatorWatch.Elapsed;
            cpu['A'] = CpuUse.Read(controlPlane.Directory) - cpuAtStart;
            // The controller shares the machine's cores with the API server it waits on: its own CPU is part of the figure.
            controllerCpu = controller.Process.TotalProcessorTime - cpuBefore;
            callsAtJobs = Difference(await ApiCallsAsync(controller), callsBefore);
            reconcilesAtJobs = Reconciles(await new HttpClient().GetStringAsync(controller.Url + "/metrics")) - reconcilesBefore;
            // Then, unless last in the round, until the Job controller counted every Job and the controller is quiet:
            // what following the Jobs to Running costs on top.
            if (!lastStep)
            {
                await WaitForCountsAsync(operatorNs, count);
                callsSettled = await SettledCallsAsync(controller, callsBefore);
            }
        }
        else
        {
            var (ns, manifests) = step == 'B'
                ? (kubectlNs, Manifests(count, i => JobManifest(kubectlNs, i)))
                : (sameJobsNs, Manifests(count, i => ControllersJob(sameJobsNs, i)));
            var cpuAtStart = CpuUse.Read(controlPlane.Directory);
            var kubectlWatch = Stopwatch.StartNew();
            await Kubectl("apply", "-f", manifests);
            await WaitForJobs(ns, count, kubectlWatch);
            cpu[step] = CpuUse.Read(controlPlane.Directory) - cpuAtStart;
            (step == 'B' ? ref kubectlTotal : ref sameJobsTotal) = kubectlWatch.Elapsed;
            if (!lastStep)
            {
                await WaitForCountsAsync(ns, count);
            }
        }
    }

    var metrics = await new HttpClient().GetStringAsync(controller.Url + "/metrics");
    double Sample(string name) => metrics.Split('\n').Where(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Sum(l => double.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture));
    var time = string.Create(CultureInfo.InvariantCulture,
        $"reconciles {Sample("batchrunner_reconcile_duration_seconds_sum"):F2} s in all, {Sample("batchrunner_scheduler_cycle_duration_seconds_count"):F0} scheduling cycles {Sample("batchrunner_scheduler_cycle_duration_seconds_sum"):F2} s");
    controller.Kill(entireProcessTree: true);
    if (round == rounds - 1)
    {
        watchDecoding = await WatchDecoding.CompareAsync(admin, operatorNs);
    }

    // The next round starts on a cluster as empty as this one did: objects left behind slow the control plane, and a
    // new controller would reconcile them all while the next burst arrives.
    await Kubectl("delete", "namespace", operatorNs, kubectlNs, sameJobsNs, "--wait=true", "--timeout=300s");
    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"round {round + 1}: batchrunner {operatorTotal.TotalSeconds:F2} s, kubectl {kubectlTotal.TotalSeconds:F2} s, kubectl of the controller's Jobs {sameJobsTotal.TotalSeconds:F2} s, floor {floorApplied.TotalSeconds:F2} s"));
    return new Round(operatorTotal, operatorApplied, kubectlTotal, sameJobsTotal, floorApplied, controllerCpu, reconcilesAtJobs, callsAtJobs, callsSettled, time, cpu);
}

static string BatchJobManifest(string ns, int i) => $"""
    apiVersion: batchrunner.io/v1alpha1
    kind: BatchJob
    metadata: {"{"}name: bj-{i}, namespace: {ns}{"}"}
    spec: {"{"}image: busybox:1.36, command: [/bin/true], completions: 1{"}"}
    """;

static string JobManifest(string ns, int i) => $"""
    apiVersion: batch/v1
    kind: Job
    metadata: {"{"}name: job-{i}, namespace: {ns}, labels: {"{"}app.kubernetes.io/managed-by: bench{"}"}{"}"}
    spec:
      completions: 1
      parallelism: 1
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers: [{"{"}name: workload, image: busybox:1.36, command: [/bin/true]{"}"}]
    """;

// The Job the controller makes of the same BatchJob, built by its own code, for kubectl to apply: labelled so the
// controller does not take it for its own, without the owner reference (its BatchJob does not exist), and without
// completionMode where the server predates it (kubectl checks fields against the server's schema; the API server
// drops the field from the controller's create just the same).
string ControllersJob(string ns, int i)
{
    var parsed = BatchJobParser.Parse(BatchJobManifest(ns, i), Backend.Kubernetes).Job!;
    var job = JobManifests.IndexedJob(parsed, Guid.Empty.ToString(), capabilities, DispatchSettings.Default);
    job.Metadata.OwnerReferences = null;
    job.Metadata.Labels[BatchJobResource.ManagedByLabel] = "bench";
    job.Spec.Template.Metadata.Labels[BatchJobResource.ManagedByLabel] = "bench";
    if (!capabilities.IndexedJobs)
    {
        job.Spec.CompletionMode = null;
    }

    return KubernetesJson.Serialize(job);
}

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

// The controller's calls by "verb resource" (its leader Lease renewals left out: they do not grow with BatchJobs).
async Task<Dictionary<string, double>> ApiCallsAsync(ControllerHandle controller)
{
    var text = await new HttpClient().GetStringAsync(controller.Url + "/metrics");
    return text.Split('\n')
        .Where(l => l.StartsWith("batchrunner_api_requests_total{", StringComparison.Ordinal))
        .Select(l => (Labels: l[(l.IndexOf('{') + 1)..l.IndexOf('}')], Value: double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)))
        .Select(m => (Key: string.Join(' ', m.Labels.Split(',').Select(p => p.Split('=', 2)[1].Trim('"'))), m.Value))
        .Where(m => !m.Key.EndsWith(" leases", StringComparison.Ordinal))
        .ToDictionary(m => m.Key, m => m.Value);
}

static double Reconciles(string metrics) =>
    metrics.Split('\n').Where(l => l.StartsWith("batchrunner_reconciles_total{", StringComparison.Ordinal)).Sum(l => double.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture));

async Task<Dictionary<string, double>> SettledCallsAsync(ControllerHandle controller, Dictionary<string, double> before)
{
    var last = Difference(await ApiCallsAsync(controller), before);
    var settling = Stopwatch.StartNew();
    for (var quiet = 0; quiet < 3 && settling.Elapsed < TimeSpan.FromMinutes(10);)
    {
        await Task.Delay(1000);
        var now = Difference(await ApiCallsAsync(controller), before);
        quiet = now.Values.Sum() == last.Values.Sum() ? quiet + 1 : 0;
        last = now;
    }

    return last;
}

static Dictionary<string, double> Difference(Dictionary<string, double> after, Dictionary<string, double> before) =>
    after.ToDictionary(a => a.Key, a => a.Value - before.GetValueOrDefault(a.Key));

string PerBatchJob(Dictionary<string, double> calls) => (calls.Values.Sum() / count).ToString("F2", CultureInfo.InvariantCulture);

// Followed through a watch rather than by listing: a list of 500 Jobs every 100 ms is megabytes a second for the API
// server to encode, a load the bench would add to the very server it times (and more for larger Jobs).
// Until the Job controller has counted (given a start time to) every Job in the namespace, polling: after the timed part.
async Task WaitForCountsAsync(string ns, int expected)
{
    var waiting = Stopwatch.StartNew();
    while ((await admin.BatchV1.ListNamespacedJobAsync(ns)).Items.Count(j => j.Status?.StartTime is not null) < expected)
    {
        if (waiting.Elapsed > TimeSpan.FromMinutes(10))
        {
            throw new TimeoutException($"the Job controller had not counted all {expected} Jobs in {ns} after 10 minutes");
        }

        await Task.Delay(2000);
    }
}

async Task WaitForJobs(string ns, int expected, Stopwatch watch)
{
    var seen = new HashSet<string>(StringComparer.Ordinal);
    using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(10) - watch.Elapsed);
    while (true)
    {
        // A list, then a watch from where it stands; a watch the server ends early is taken up again the same way.
        var list = await admin.BatchV1.ListNamespacedJobAsync(ns, cancellationToken: deadline.Token);
        seen.UnionWith(list.Items.Select(j => j.Metadata.Name));
        if (seen.Count >= expected)
        {
            return;
        }

        try
        {
            await foreach (var (type, job) in admin.BatchV1.WatchListNamespacedJobAsync(ns, resourceVersion: list.Metadata.ResourceVersion, cancellationToken: deadline.Token))
            {
                if (type == WatchEventType.Added && seen.Add(job.Metadata.Name) && seen.Count >= expected)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            throw new TimeoutException($"only {seen.Count} of {expected} Jobs in {ns} after 10 minutes");
        }
    }
}

// A watch that sees a Job arrive, then a list that finds it: the paths WaitForJobs takes in every step.
async Task WarmUpAsync()
{
    const string ns = "bench-warm-up";
    await controlPlane.CreateNamespaceAsync(ns);
    var watching = WaitForJobs(ns, 1, Stopwatch.StartNew());
    await Kubectl("apply", "-f", Manifests(1, i => JobManifest(ns, i)));
    await watching;
    await WaitForJobs(ns, 1, Stopwatch.StartNew());
    _ = ControllersJob(ns, 0);
    await Kubectl("delete", "namespace", ns, "--wait=true", "--timeout=300s");
}

string Manifests(int n, Func<int, string> one)
{
    var path = Path.Combine(controlPlane.Directory, $"bench-{Guid.NewGuid():N}.yaml");
    var text = new StringBuilder();
    for (var i = 0; i < n; i++)
    {
        text.Append("---\n").Append(one(i)).Append('\n');
    }

    File.WriteAllText(path, text.ToString());
    return path;
}

Task Kubectl(params string[] args) => controlPlane.KubectlAsync(root, args);

ControllerHandle StartController(string path, string lease)
{
    var port = 18000 + Random.Shared.Next(1000);
    // The published controller operator.sh made (as the image has it); the Release build when run by hand.
    var dll = Environment.GetEnvironmentVariable("BENCH_CONTROLLER_DLL") ?? Path.Combine(root, "controller", "BatchRunner.Controller", "bin", "Release", "net10.0", "batchrunner-controller.dll");
    // From its own folder, as the image runs it (WORKDIR /app): its appsettings.json applies.
    var start = new ProcessStartInfo("dotnet") { WorkingDirectory = Path.GetDirectoryName(dll)!, RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var (name, value) in imageRuntimeEnvironment)
    {
        start.Environment[name] = value;
    }

    foreach (var arg in new[]
    {
        dll, "--urls", $"http://127.0.0.1:{port}", $"--BatchRunner:Kubernetes:Kubeconfig={path}", "--BatchRunner:LeaderElection:Identity=bench",
        $"--BatchRunner:LeaderElection:LeaseName={lease}",
        $"--BatchRunner:Kubernetes:Burst={burst}", $"--BatchRunner:Kubernetes:Workers={workers}",
    }.Concat(qps is null ? [] : [$"--BatchRunner:Kubernetes:Qps={qps}"]))
    {
        start.ArgumentList.Add(arg);
    }

    var process = Process.Start(start)!;
    process.OutputDataReceived += (_, line) =>
    {
        if (line.Data?.Contains("no client-side QPS limit", StringComparison.Ordinal) == true)
        {
            clientLimitLifted = true;
        }
    };
    process.ErrorDataReceived += (_, _) => { };
    process.BeginOutputReadLine();
    process.BeginErrorReadLine();
    return new ControllerHandle(process, $"http://127.0.0.1:{port}");
}

int Option(string name, int fallback) =>
    Array.IndexOf(args, name) is var at and >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;

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

/// <summary>One round's figures.</summary>
sealed record Round(
    TimeSpan Operator, TimeSpan Applied, TimeSpan Kubectl, TimeSpan SameJobs, TimeSpan Floor, TimeSpan ControllerCpu, double ReconcilesAtJobs,
    Dictionary<string, double> CallsAtJobs, Dictionary<string, double>? CallsSettled, string Time, Dictionary<char, CpuUse> Cpu);

/// <summary>
/// CPU seconds the machine and the control plane's processes used: the two cores are shared by kubectl, the API
/// server, etcd, the Job controller and BatchRunner's controller, so where a step is slower its CPU says who paid.
/// </summary>
sealed record CpuUse(double Machine, double ApiServer, double Etcd, double JobController)
{
    public static CpuUse operator -(CpuUse a, CpuUse b) =>
        new(a.Machine - b.Machine, a.ApiServer - b.ApiServer, a.Etcd - b.Etcd, a.JobController - b.JobController);

    // Linux's USER_HZ: /proc reports CPU time in these ticks.
    private const double TicksPerSecond = 100;

    public static CpuUse Read(string controlPlaneDirectory)
    {
        var pids = File.ReadAllLines(Path.Combine(controlPlaneDirectory, "env")).Select(l => l.Split('=', 2)).Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        // The first line of /proc/stat: every CPU's ticks by kind; busy is all but idle and iowait.
        var ticks = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(t => double.Parse(t, CultureInfo.InvariantCulture)).ToArray();
        var busy = ticks.Sum() - ticks[3] - ticks[4];
        return new(busy / TicksPerSecond, CpuOf("APISERVER_PID"), CpuOf("ETCD_PID"), CpuOf("CONTROLLER_MANAGER_PID"));

        double CpuOf(string name)
        {
            if (!pids.TryGetValue(name, out var pid) || !File.Exists($"/proc/{pid}/stat"))
            {
                return double.NaN;
            }

            // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }
    }
}

sealed record ControllerHandle(Process Process, string Url) : IDisposable
{
    public void Kill(bool entireProcessTree) => Process.Kill(entireProcessTree);

    public void Dispose()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
        }

        Process.Dispose();
    }
}
