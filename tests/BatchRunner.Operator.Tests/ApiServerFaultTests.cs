using BatchRunner.Faults.Testing;
using BatchRunner.Kubernetes.Testing;
using k8s;
using Xunit;
using Xunit.Abstractions;
using static BatchRunner.Operator.Tests.Cluster;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// The fault tier for the Kubernetes door: the controller talks to the API server through a <see cref="FaultProxy"/>
/// that stalls, resets, refuses and cuts its connections while BatchJobs arrive (kubectl and the pod simulator reach
/// the API server directly); once the faults stop, every promise is checked.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class ApiServerFaultTests(OperatorFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>How long after the last fault every BatchJob must have finished.</summary>
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(90);

    private readonly List<IAsyncDisposable> _owned = [];
    private string _ns = "";

    public async Task InitializeAsync()
    {
        _ns = "f-" + Guid.NewGuid().ToString("N")[..10];
        await fixture.ControlPlane.CreateNamespaceAsync(_ns);
    }

    public async Task DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }
    }

    [Fact]
    public async Task Under_stalls_resets_refusals_and_cut_responses_every_batchjob_gets_one_job_and_finishes()
    {
        var (proxy, kubeconfig) = await ThroughProxyAsync();
        // Restarted when it exits, as its pod's kubelet does: a replica that cannot renew its lease for the renew
        // deadline (faults can cut the API server off that long) must stop leading and exit, and its successor leads.
        await using var replicas = new Supervised(() => Started(ControllerProcess.Start(kubeconfig, "replica-faults")));

        // 45 s of faults drawn from a seed while twelve BatchJobs arrive.
        var faults = FaultSchedule.RunAsync(proxy, TimeSpan.FromSeconds(45), seed: 20261206);
        var names = Enumerable.Range(0, 12).Select(i => $"under-faults-{i}").ToList();
        foreach (var name in names)
        {
            await fixture.ApplyAsync(BatchJobYaml(_ns, name));
            await Task.Delay(TimeSpan.FromSeconds(3));
        }

        await faults;
        output.WriteLine("faults injected: " + FaultRig.Report("API server", proxy));

        // Every BatchJob finishes within the recovery time.
        await AllFinishedAsync(names, "every BatchJob reaches a final phase once the faults stop");
        await replicas.StopAsync();
        output.WriteLine($"controller processes: {replicas.All.Count}");

        foreach (var name in names)
        {
            var batchJob = await BatchJobAsync(fixture.Admin, _ns, name);
            Assert.Equal("Succeeded", Phase(batchJob));
            Assert.Equal((6, 0, 6), (Status(batchJob, "succeeded")!.Value.GetInt32(), Status(batchJob, "failed")!.Value.GetInt32(), Status(batchJob, "total")!.Value.GetInt32()));

            // One Job per BatchJob, and no index succeeded twice: the Job counts each completion once.
            var job = Assert.Single(await JobsAsync(fixture.Admin, _ns, name));
            Assert.Equal(6, job.Status.Succeeded);
            Assert.Equal(6, (await PodsAsync(fixture.Admin, _ns, name)).Count(p => p.Status?.Phase == "Succeeded"));
        }

        AssertExitedOnlyForLostLeases(replicas);
        Assert.True(proxy.Injected.Values.Sum() >= 10, "the schedule injected faults");
        Assert.All(new[] { FaultKind.Latency, FaultKind.Reset, FaultKind.Refused }, kind => Assert.True(proxy.Injected.GetValueOrDefault(kind) > 0, $"no {kind} fault"));

        // Secrets never reach logs: the controller's token is in its kubeconfig, not in a line it wrote.
        var token = await FaultRig.ControllerTokenAsync(fixture);
        Assert.True(token.Length > 20, "the kubeconfig carries a token");
        Assert.All(replicas.All, r => Assert.DoesNotContain(token, r.Log, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Under_429s_500s_503s_and_timeouts_after_the_fact_every_batchjob_gets_one_job_and_finishes()
    {
        var proxy = await FaultRig.HttpsApiServerProxyAsync(fixture);
        _owned.Add(proxy);
        _owned.Add(PodSimulator.Start(fixture.Admin, new PodSimulatorOptions { Namespace = _ns, RunningFor = TimeSpan.FromSeconds(1) }));
        var kubeconfig = await FaultRig.KubeconfigThroughAsync(fixture, proxy.Port, _ns + "-https");
        await using var replicas = new Supervised(() => Started(ControllerProcess.Start(kubeconfig, "replica-http-errors")));

        await Eventually.TrueAsync(() => Task.FromResult(replicas.All[^1].Log.Contains("Caches synced", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), "the replica leads");

        // While eight BatchJobs arrive, a fifth of the controller's requests are throttled (429, Retry-After 1), fail
        // (500, 503) without reaching etcd, or time out (504) after the API server did them, as an overloaded one answers.
        proxy.FailFraction(0.2,
        [
            (KubernetesError.TooManyRequests, HttpFaultTiming.Instead), (KubernetesError.InternalError, HttpFaultTiming.Instead),
            (KubernetesError.ServiceUnavailable, HttpFaultTiming.Instead), (KubernetesError.Timeout, HttpFaultTiming.AfterDoing),
        ], seed: 429);
        var names = Enumerable.Range(0, 8).Select(i => $"http-errors-{i}").ToList();
        foreach (var name in names)
        {
            await fixture.ApplyAsync(BatchJobYaml(_ns, name));
            await Task.Delay(TimeSpan.FromSeconds(2));
        }

        // The errors go on while the pods run and the BatchJobs finish, then stop.
        await Task.Delay(TimeSpan.FromSeconds(10));
        proxy.FailFraction(0, []);
        output.WriteLine($"API server errors given: {string.Join(", ", proxy.Answered.OrderBy(a => a.Key).Select(a => $"{a.Key} {a.Value}"))}; {proxy.Forwarded} requests passed");

        await AllFinishedAsync(names, "every BatchJob reaches a final phase once the errors stop");
        await replicas.StopAsync();
        foreach (var name in names)
        {
            var batchJob = await BatchJobAsync(fixture.Admin, _ns, name);
            Assert.Equal("Succeeded", Phase(batchJob));
            Assert.Equal(6, Assert.Single(await JobsAsync(fixture.Admin, _ns, name)).Status.Succeeded);
        }

        AssertExitedOnlyForLostLeases(replicas);
        Assert.All(new[] { "TooManyRequests instead", "InternalError instead", "ServiceUnavailable instead", "Timeout afterdoing" },
            kind => Assert.True(proxy.Answered.GetValueOrDefault(kind) > 0, $"no {kind} was given"));
    }

    [Fact]
    public async Task Across_api_server_crashes_and_restarts_every_batchjob_gets_one_job_and_finishes()
    {
        _owned.Add(PodSimulator.Start(fixture.Admin, new PodSimulatorOptions { Namespace = _ns, RunningFor = TimeSpan.FromSeconds(1) }));
        // Restarted as a kubelet would: an API server down longer than the renew deadline (4 s down plus its start)
        // costs the replica its lease, and it exits.
        await using var replicas = new Supervised(() => Started(ControllerProcess.Start(fixture.ControllerKubeconfig, "replica-restarts")));

        // Eight BatchJobs arrive while the API server is killed twice (down 2 s, then 4 s) under the controller's watches.
        var names = Enumerable.Range(0, 8).Select(i => $"across-restarts-{i}").ToList();
        for (var i = 0; i < names.Count; i++)
        {
            await ApplyWhenServingAsync(names[i]);
            if (i is 2 or 5)
            {
                await fixture.ControlPlane.RestartApiServerAsync(TimeSpan.FromSeconds(i == 2 ? 2 : 4));
            }
        }

        await AllFinishedAsync(names, "every BatchJob reaches a final phase after the API server came back");
        foreach (var name in names)
        {
            var batchJob = await BatchJobAsync(fixture.Admin, _ns, name);
            Assert.Equal("Succeeded", Phase(batchJob));
            Assert.Equal(6, Assert.Single(await JobsAsync(fixture.Admin, _ns, name)).Status.Succeeded);
        }

        await replicas.StopAsync();
        output.WriteLine($"controller processes: {replicas.All.Count}");
        AssertExitedOnlyForLostLeases(replicas);
    }

    /// <summary>A replica that exited did so because it lost its lease (said, exit code 1), never by crashing; the last one runs.</summary>
    private static void AssertExitedOnlyForLostLeases(Supervised replicas)
    {
        Assert.All(replicas.All.Where(r => r.HasExited), r => Assert.True(r.ExitCode == 1 && r.Log.Contains("lost the lease", StringComparison.Ordinal), $"a replica exited with {r.ExitCode}:\n{r.Log}"));
        Assert.False(replicas.All[^1].HasExited, "the last replica runs");
    }

    /// <summary>kubectl apply, again while the API server is still coming back (its clients' calls fail for a moment after a restart).</summary>
    private async Task ApplyWhenServingAsync(string name)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await fixture.ApplyAsync(BatchJobYaml(_ns, name));
                return;
            }
            catch (InvalidOperationException) when (attempt < 10)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
    }

    /// <summary>Waits until every BatchJob named is Succeeded or Failed; if not within the recovery time, says where each stands.</summary>
    private async Task AllFinishedAsync(IReadOnlyList<string> names, string what)
    {
        try
        {
            await Eventually.TrueAsync(
                async () => (await Task.WhenAll(names.Select(n => BatchJobAsync(fixture.Admin, _ns, n)))).All(b => Phase(b) is "Succeeded" or "Failed"),
                Recovery, what);
        }
        catch (TimeoutException)
        {
            foreach (var name in names)
            {
                var jobs = await JobsAsync(fixture.Admin, _ns, name);
                var pods = await PodsAsync(fixture.Admin, _ns, name);
                output.WriteLine($"{name}: {Phase(await BatchJobAsync(fixture.Admin, _ns, name))}; Jobs {string.Join(", ", jobs.Select(j => $"{j.Metadata.Name} active {j.Status?.Active} succeeded {j.Status?.Succeeded}"))}; "
                    + $"pods {string.Join(", ", pods.GroupBy(p => p.Status?.Phase).Select(g => $"{g.Key} {g.Count()}"))}");
            }

            throw;
        }
    }

    [Fact]
    public async Task A_leader_cut_off_from_the_api_server_past_its_renew_deadline_stops_leading_and_exits_with_1()
    {
        var (proxy, kubeconfig) = await ThroughProxyAsync();
        var controller = Started(ControllerProcess.Start(kubeconfig, "replica-cut-off"));
        await Eventually.TrueAsync(() => Task.FromResult(controller.Log.Contains("replica-cut-off leads", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), "the replica leads");

        // Refused for longer than the renew deadline (10 s): another replica may lead by now, so this one must stop.
        var refusing = proxy.RefuseForAsync(TimeSpan.FromSeconds(14));
        await Eventually.TrueAsync(() => Task.FromResult(controller.HasExited), TimeSpan.FromSeconds(30), "the replica exits once its lease is lost");
        await refusing;

        Assert.Equal(1, controller.ExitCode);
        Assert.Contains("replica-cut-off lost the lease batchrunner-controller", controller.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_controller_started_while_the_api_server_refuses_connections_waits_for_it_and_then_dispatches()
    {
        var (proxy, kubeconfig) = await ThroughProxyAsync();

        // Without an election the operator's first call is the API server's version: it meets a refused port.
        var refusing = proxy.RefuseForAsync(TimeSpan.FromSeconds(6));
        var controller = Started(ControllerProcess.Start(kubeconfig, "replica-refused", "--BatchRunner:LeaderElection:Enabled=false"));
        await fixture.ApplyAsync(BatchJobYaml(_ns, "after-refusals"));
        await refusing;

        await Eventually.TrueAsync(
            async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "after-refusals")) == "Succeeded",
            TimeSpan.FromSeconds(60), "the BatchJob succeeds once the API server answers");
        Assert.False(controller.HasExited, $"the controller exited with {(controller.HasExited ? controller.ExitCode : 0)}");
        Assert.True(proxy.Injected.GetValueOrDefault(FaultKind.Refused) > 0, "connections were refused");
        Assert.Contains("version could not be read", controller.Log, StringComparison.Ordinal);
    }

    /// <summary>A proxy in front of the API server, the controller's kubeconfig through it, and pods that run for a second.</summary>
    private async Task<(FaultProxy Proxy, string Kubeconfig)> ThroughProxyAsync()
    {
        var proxy = FaultRig.ApiServerProxy(fixture);
        _owned.Add(proxy);
        _owned.Add(PodSimulator.Start(fixture.Admin, new PodSimulatorOptions { Namespace = _ns, RunningFor = TimeSpan.FromSeconds(1) }));
        return (proxy, await FaultRig.KubeconfigThroughAsync(fixture, proxy, _ns));
    }

    /// <summary>A controller process started again whenever it exits (restartPolicy: Always), until stopped.</summary>
    private sealed class Supervised : IAsyncDisposable
    {
        private readonly List<ControllerProcess> _all = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _watching;

        public Supervised(Func<ControllerProcess> start)
        {
            _all.Add(start());
            _watching = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    if (_all[^1].HasExited)
                    {
                        lock (_all)
                        {
                            _all.Add(start());
                        }
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(500), _stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                }
            });
        }

        public IReadOnlyList<ControllerProcess> All
        {
            get
            {
                lock (_all)
                {
                    return [.. _all];
                }
            }
        }

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await _watching;
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _stop.Dispose();
        }
    }

    /// <summary>The controller, stopped (its log written to the output) when the test ends.</summary>
    private ControllerProcess Started(ControllerProcess controller)
    {
        _owned.Add(new FaultRig.Logged(controller, output));
        return controller;
    }
}
