using System.Globalization;
using System.Net;
using BatchRunner.Browser.Testing;
using BatchRunner.Kubernetes.Testing;
using Microsoft.Playwright;
using Xunit;
using Xunit.Abstractions;
using static BatchRunner.Operator.Tests.Cluster;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// The controller's dashboard on the test control plane, in Debian's chromium: a queue with a quota, a sweep that
/// runs, one that waits behind it, and one whose indexes fail; the pages follow them as their pods finish.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class DashboardTests(OperatorFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Secret = "s3cr3t-dashboard-value";
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan Shown = TimeSpan.FromSeconds(30);
    private readonly HeadlessBrowser _browser = new();
    private readonly string _id = Guid.NewGuid().ToString("N")[..8];
    private readonly string _store = Directory.CreateTempSubdirectory("dashboard-store-").FullName;
    private ControllerProcess? _controller;
    private PodSimulator? _pods;

    private string Ns => "dash-" + _id;
    private string Queue => "dash-" + _id;

    public async Task InitializeAsync()
    {
        await fixture.ControlPlane.CreateNamespaceAsync(Ns);
        await _browser.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        if (_controller is not null)
        {
            output.WriteLine($"--- controller log ---\n{_controller.Log}");
            await _controller.DisposeAsync();
        }

        if (_pods is not null)
        {
            await _pods.DisposeAsync();
        }

        await fixture.TryKubectlAsync("delete", "queue", Queue, "--ignore-not-found");
        Directory.Delete(_store, recursive: true);
    }

    [Fact]
    public async Task The_dashboard_shows_queues_and_sweeps_as_their_pods_finish_why_one_waits_and_a_failed_index_with_its_log()
    {
        // Each pod leaves in the store what the results wrapper would: a ledger row, a result line and its log;
        // every index of "broken" fails.
        _pods = PodSimulator.Start(fixture.Admin, new PodSimulatorOptions
        {
            Namespace = Ns, NumberCompletionIndexes = true, RunningFor = TimeSpan.FromSeconds(3), Outcome = pod =>
            {
                var fails = pod.Metadata.Labels["batchrunner.io/batchjob"] == "broken";
                WriteAttempt(pod.Metadata.Labels["batchrunner.io/batchjob"], pod.Metadata.Labels["batchrunner.io/run"],
                    int.Parse(pod.Metadata.Annotations[PodSimulator.CompletionIndexAnnotation], CultureInfo.InvariantCulture), fails);
                return fails ? PodOutcome.Fail(3) : PodOutcome.Succeed;
            },
        });
        await fixture.ApplyAsync($"""
            apiVersion: batchrunner.io/v1alpha1
            kind: Queue
            metadata: {"{"}name: {Queue}{"}"}
            spec:
              backends: [kubernetes]
              quotas: {"{"}kubernetes: {"{"}indexes: 2{"}"}{"}"}
            """);
        _controller = ControllerProcess.Start(fixture.ControllerKubeconfig, "replica-a",
            "--BatchRunner:Results:Uri=" + _store, "--BatchRunner:Dashboard:RefreshSeconds=1");

        await fixture.ApplyAsync(BatchJobYaml(Ns, "sweep", $"queue: {Queue}", sweep: "{grid: {n: [1, 2, 3, 4, 5, 6, 7, 8]}}"));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, Ns, "sweep")) == "Running", Converge, "the sweep runs");

        // The sweep's page is open while its pods run: its progress moves, with no reload, until all eight succeeded.
        var (sweep, sweepErrors) = await OpenAsync($"/ui/namespaces/{Ns}/batchjobs/sweep");
        var first = await sweep.Locator("p.progress .count").TextContentAsync();
        await sweep.EvaluateAsync("() => { window.__sameDocument = true; }");

        // A second sweep in the queue waits behind the first (the quota is the first's two indexes), and says why.
        await fixture.ApplyAsync(BatchJobYaml(Ns, "behind", $"queue: {Queue}", sweep: "{grid: {n: [1, 2]}}"));
        await fixture.ApplyAsync(BatchJobYaml(Ns, "broken", $"retry: {{attempts: 1}}\nenv: [{{name: API_TOKEN, value: {Secret}}}]", sweep: "{grid: {n: [1, 2]}}"));
        var (overview, overviewErrors) = await OpenAsync("/ui/");
        var waitingRow = overview.Locator($"#waiting tr[data-key='{Ns}/behind']");
        await Assertions.Expect(waitingRow).ToHaveCountAsync(1, new() { Timeout = (float)Converge.TotalMilliseconds });
        var reason = (await waitingRow.Locator("td:nth-child(4)").TextContentAsync())!;
        Assert.False(string.IsNullOrWhiteSpace(reason), "a waiting sweep shows the scheduler's reason");
        // The reason is the one in the BatchJob's status, unless the sweep was admitted between the two reads.
        var queueStatus = Status(await BatchJobAsync(fixture.Admin, Ns, "behind"), "queue");
        if (queueStatus is { } queued && queued.TryGetProperty("reason", out var statusReason))
        {
            Assert.Equal(statusReason.GetString(), reason);
        }

        Assert.Equal(1, await overview.Locator($"#queues tr[data-queue='{Queue}']").CountAsync());
        await overview.ScreenshotAsync(new() { Path = Artifact("cluster-overview-waiting.png"), FullPage = true });

        await Assertions.Expect(sweep.Locator("#phase")).ToHaveTextAsync("Succeeded", new() { Timeout = (float)Converge.TotalMilliseconds });
        Assert.Equal("8/8", await sweep.Locator("p.progress .count").TextContentAsync());
        Assert.NotEqual("8/8", first);
        Assert.True(await sweep.EvaluateAsync<bool>("() => window.__sameDocument === true"), "the page followed the sweep without being reloaded");
        await sweep.ScreenshotAsync(new() { Path = Artifact("cluster-sweep-succeeded.png"), FullPage = true });

        // Once everything ended, the overview's counts are the cluster's, and the waiting sweep ran after all.
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, Ns, "behind")) == "Succeeded"
            && Phase(await BatchJobAsync(fixture.Admin, Ns, "broken")) == "Failed", Converge, "behind succeeds and broken fails");
        var phases = overview.Locator("#phase-counts");
        await Assertions.Expect(phases.Locator("[data-phase=Waiting] b")).ToHaveTextAsync("0", new() { Timeout = (float)Shown.TotalMilliseconds });
        await Assertions.Expect(overview.Locator($"#running tr[data-key^='{Ns}/']")).ToHaveCountAsync(0, new() { Timeout = (float)Shown.TotalMilliseconds });
        var counts = await CountsAsync(phases);
        Assert.True(counts["Succeeded"] >= 2 && counts["Failed"] >= 1, string.Join(", ", counts));
        Assert.Equal(0, await overview.Locator($"#waiting tr[data-key='{Ns}/behind']").CountAsync());

        // The list, filtered to this namespace, links each BatchJob to its page.
        var (list, listErrors) = await OpenAsync($"/ui/batchjobs?namespace={Ns}");
        Assert.Equal(3, await list.Locator("#batchjobs tbody tr").CountAsync());
        Assert.Equal("3 BatchJob(s)", await list.Locator("#matching").TextContentAsync());

        // The failed sweep's page: its failed indexes with the ledger's reason and a link to each one's log.
        await list.Locator($"#batchjobs tr[data-key='{Ns}/broken'] td:nth-child(2) a").ClickAsync();
        await Assertions.Expect(list.Locator("#phase")).ToHaveTextAsync("Failed");
        await Assertions.Expect(list.Locator("#failures tbody tr").First).ToContainTextAsync("exit code 3");
        var row = list.Locator("#failures tbody tr").First;
        var index = await row.GetAttributeAsync("data-index");
        var log = await list.RunAndWaitForResponseAsync(() => row.Locator("a.log").ClickAsync(), r => r.Url.EndsWith("/log", StringComparison.Ordinal));
        Assert.Equal(200, log.Status);
        Assert.Contains($"broken index {index} diverged", await log.TextAsync(), StringComparison.Ordinal);
        await list.GoBackAsync();
        await Assertions.Expect(list.FrameLocator("#report").Locator("html[data-ready=true]")).ToHaveCountAsync(1, new() { Timeout = (float)Shown.TotalMilliseconds });
        await list.ScreenshotAsync(new() { Path = Artifact("cluster-broken.png"), FullPage = true });
        Assert.DoesNotContain(Secret, await list.ContentAsync(), StringComparison.Ordinal);

        // What is not there is a 404 page.
        var (missing, body) = await _controller.GetAsync($"/ui/namespaces/{Ns}/batchjobs/nobody");
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Contains($"There is no BatchJob {Ns}/nobody.", body, StringComparison.Ordinal);

        Assert.Empty(sweepErrors.Concat(overviewErrors).Concat(listErrors));
    }

    private async Task<(IPage Page, List<string> Errors)> OpenAsync(string path)
    {
        var page = await _browser.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        page.Request += (_, request) =>
        {
            if (!request.Url.StartsWith(_controller!.Url + "/ui/", StringComparison.Ordinal))
            {
                errors.Add("a request beyond the dashboard: " + request.Url);
            }
        };
        await page.GotoAsync(_controller!.Url + path);
        return (page, errors);
    }

    private static async Task<Dictionary<string, int>> CountsAsync(ILocator phases)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var link in await phases.Locator("a").AllAsync())
        {
            counts[(await link.GetAttributeAsync("data-phase"))!] = int.Parse((await link.Locator("b").TextContentAsync())!, CultureInfo.InvariantCulture);
        }

        return counts;
    }

    private static string Artifact(string name) => Path.Combine(HeadlessBrowser.Artifacts, name);

    private void WriteAttempt(string batchJob, string run, int index, bool fails)
    {
        var attempt = Path.Combine(_store, $"batchjob={batchJob}", $"run={run}", $"index={index}", "attempt=1");
        Directory.CreateDirectory(Path.Combine(attempt, "output"));
        Directory.CreateDirectory(Path.Combine(attempt, "logs"));
        File.WriteAllText(Path.Combine(attempt, "logs", "stdout.txt"), $"{batchJob} index {index} {(fails ? "diverged" : "converged")}\n");
        if (!fails)
        {
            File.WriteAllText(Path.Combine(attempt, "output", "rows.jsonl"), $"{{\"mean_wait\": {index}.5}}\n");
        }

        File.WriteAllText(Path.Combine(attempt, "ledger.json"), $$"""
            {"batchjob": "{{batchJob}}", "namespace": "{{Ns}}", "run": "{{run}}", "index": {{index}}, "attempt": 1, "repeat": 0, "seed": {{index}},
             "params": {"n": {{index + 1}}}, "status": "{{(fails ? "failed" : "succeeded")}}", "exit_code": {{(fails ? 3 : 0)}}, {{(fails ? "\"reason\": \"exit code 3\"," : "")}}
             "started_at": "2026-11-22T10:00:00.000000Z", "finished_at": "2026-11-22T10:00:01.000000Z", "duration_seconds": 1.0, "backend": "kubernetes",
             "output_files": {{(fails ? 0 : 1)}}, "output_bytes": 18, "output_rows": {{(fails ? 0 : 1)}}, "output_malformed": 0}
            """);
    }
}
