using System.Diagnostics;
using System.Net;
using BatchRunner.Kubernetes.Testing;
using k8s;
using k8s.Models;
using Xunit;
using Xunit.Abstractions;
using static BatchRunner.Operator.Tests.Cluster;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// Leader election as a platform team meets it: rolling updates stop the leader with SIGTERM (it releases the
/// Lease), crashes kill it, and people edit Leases by hand. Every test uses a Lease of its own.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class LeadershipTests(OperatorFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(60);
    // The controller's defaults (LeaderElectionOptions), which these tests keep unless a case says otherwise.
    private static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan RetryPeriod = TimeSpan.FromSeconds(2);

    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<ControllerProcess> _controllers = [];
    private string _ns = "";
    private string _lease = "";

    public async Task InitializeAsync()
    {
        _ns = "t-" + Guid.NewGuid().ToString("N")[..10];
        _lease = $"lease-{_ns}";
        await fixture.ControlPlane.CreateNamespaceAsync(_ns);
        _owned.Add(PodSimulator.Start(fixture.Admin, new PodSimulatorOptions { Namespace = _ns }));
    }

    public async Task DisposeAsync()
    {
        foreach (var controller in _controllers)
        {
            output.WriteLine($"--- controller {controller.Identity} log ---\n{controller.Log}");
            await controller.DisposeAsync();
        }

        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }
    }

    [Fact]
    public async Task After_the_leader_stops_with_SIGTERM_a_new_process_leads_at_once_and_reconciles_what_arrived_meanwhile()
    {
        var a = StartController("replica-a");
        await LeadsAsync(a);

        await a.StopAsync();
        Assert.Equal(0, a.ExitCode);
        Assert.Contains("replica-a released", a.Log, StringComparison.Ordinal);
        var released = await LeaseAsync();
        Assert.Equal("", released.Spec.HolderIdentity);

        await fixture.ApplyAsync(BatchJobYaml(_ns, "meanwhile"));
        var clock = Stopwatch.StartNew();
        var b = StartController("replica-b");
        await LeadsAsync(b);
        var takeover = clock.Elapsed;
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "meanwhile")) == "Succeeded", Converge, "the new leader runs the BatchJob");

        output.WriteLine($"a new process leads {takeover.TotalSeconds:F1} s after it starts, behind a released Lease");
        Assert.True(takeover < LeaseDuration, $"took {takeover.TotalSeconds:F1} s: the released Lease was waited out, not taken");
        Assert.Single(await JobsAsync(fixture.Admin, _ns, "meanwhile"));
    }

    [Fact]
    public async Task With_two_replicas_the_standby_leads_within_its_retry_period_of_the_leaders_SIGTERM()
    {
        var a = StartController("replica-a");
        await LeadsAsync(a);
        var b = StartController("replica-b");
        await Eventually.TrueAsync(async () => (await b.GetAsync("/readyz")).Body == "ok: standby, waiting to lead (leader: replica-a)", Converge, "the standby says who leads");
        Assert.Equal(0, await b.MetricAsync("batchrunner_leader"));
        Assert.Equal("ok: leader", (await a.GetAsync("/readyz")).Body);

        var (released, led) = await WatchHandOverAsync(a.StopAsync(), "replica-b");
        await fixture.ApplyAsync(BatchJobYaml(_ns, "after"));
        await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, "after")) == "Succeeded", Converge, "the new leader runs a new BatchJob");

        output.WriteLine($"SIGTERM → released {released.TotalSeconds:F1} s; released → standby leads {(led - released).TotalSeconds:F1} s (retry period {RetryPeriod.TotalSeconds} s)");
        Assert.True(led - released <= RetryPeriod * 2 + TimeSpan.FromSeconds(1), $"the standby took {(led - released).TotalSeconds:F1} s after the release");
        await Eventually.TrueAsync(async () => await b.MetricAsync("batchrunner_leader") == 1, TimeSpan.FromSeconds(5), "the gauge follows");
        Assert.Equal("ok: leader", (await b.GetAsync("/readyz")).Body);
    }

    [Fact]
    public async Task After_the_leader_is_killed_the_standby_leads_within_the_lease_duration_and_a_retry()
    {
        var a = StartController("replica-a");
        await LeadsAsync(a);
        var b = StartController("replica-b");
        await Eventually.TrueAsync(async () => (await b.GetAsync("/readyz")).Status == HttpStatusCode.OK, Converge, "the standby is ready");

        var (_, led) = await WatchHandOverAsync(a.KillAsync(), "replica-b");

        output.WriteLine($"kill -9 → standby leads {led.TotalSeconds:F1} s (lease duration {LeaseDuration.TotalSeconds} s, retry period {RetryPeriod.TotalSeconds} s)");
        Assert.True(led <= LeaseDuration + RetryPeriod * 2 + TimeSpan.FromSeconds(1), $"took {led.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task A_rolling_restart_of_two_replicas_ends_with_one_leader_and_no_batchjob_missed()
    {
        var a = StartController("replica-a");
        await LeadsAsync(a);
        var b = StartController("replica-b");
        await ReadyAsync(b);

        // BatchJobs keep arriving through the whole roll, one a second.
        using var rolling = new CancellationTokenSource();
        var applied = new List<string>();
        var applying = Task.Run(async () =>
        {
            for (var i = 0; !rolling.IsCancellationRequested; i++)
            {
                await fixture.ApplyAsync(BatchJobYaml(_ns, $"roll-{i}", sweep: "{grid: {rate: [0.5, 0.9]}}"));
                lock (applied)
                {
                    applied.Add($"roll-{i}");
                }

                await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None);
            }
        });

        // As a Deployment rolls with maxSurge 1: a new pod is ready, then an old one is stopped, twice.
        var clock = Stopwatch.StartNew();
        var gaps = new List<TimeSpan>();
        var c = StartController("replica-c");
        await ReadyAsync(c);
        gaps.Add(await LeaderlessGapAsync(a.StopAsync()));
        var d = StartController("replica-d");
        await ReadyAsync(d);
        gaps.Add(await LeaderlessGapAsync(b.StopAsync()));
        await rolling.CancelAsync();
        await applying;

        var leaders = new List<string>();
        foreach (var replica in new[] { c, d })
        {
            if (await replica.MetricAsync("batchrunner_leader") == 1)
            {
                leaders.Add(replica.Identity);
            }
        }

        Assert.Equal([(await LeaseAsync()).Spec.HolderIdentity], leaders);
        foreach (var name in applied)
        {
            await Eventually.TrueAsync(async () => Phase(await BatchJobAsync(fixture.Admin, _ns, name)) == "Succeeded", Converge, $"{name} succeeds");
            Assert.Single(await JobsAsync(fixture.Admin, _ns, name));
        }

        output.WriteLine($"rolling restart: {clock.Elapsed.TotalSeconds:F1} s, {applied.Count} BatchJobs applied meanwhile, leaderless gaps {string.Join(", ", gaps.Select(g => $"{g.TotalSeconds:F1} s"))}");
        Assert.All(gaps, gap => Assert.True(gap < LeaseDuration, $"no leader for {gap.TotalSeconds:F1} s"));
    }

    public static TheoryData<string, string?, int?, bool, bool> HandEditedLeases => new()
    {
        // case, holder, duration, with times, times in the future
        { "the holder is a process that no longer exists", "ghost-of-a-deleted-pod", 15, true, false },
        { "no holder and no times", null, null, false, false },
        { "a one-second duration (the API server refuses zero)", "ghost-of-a-deleted-pod", 1, true, false },
        { "a day's duration", "ghost-of-a-deleted-pod", 86_400, true, false },
        { "times in the future", "ghost-of-a-deleted-pod", 15, true, true },
        { "a holder and no times", "ghost-of-a-deleted-pod", 15, false, false },
    };

    [Theory]
    [MemberData(nameof(HandEditedLeases))]
    public async Task A_lease_edited_by_hand_leaves_no_controller_leaderless_past_a_lease_duration_and_a_retry(string @case, string? holder, int? duration, bool withTimes, bool inTheFuture)
    {
        // A short lease keeps the cases quick; the bound scales with it.
        var lease = TimeSpan.FromSeconds(4);
        var retry = TimeSpan.FromSeconds(1);
        var at = inTheFuture ? DateTime.UtcNow.AddYears(10) : DateTime.UtcNow;
        await fixture.Admin.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
        {
            Metadata = new V1ObjectMeta { Name = _lease },
            Spec = new V1LeaseSpec
            {
                HolderIdentity = holder, LeaseDurationSeconds = duration,
                AcquireTime = withTimes ? at : null, RenewTime = withTimes ? at : null,
            },
        }, OperatorFixture.SystemNamespace);

        var clock = Stopwatch.StartNew();
        var controller = StartController("replica-a",
            $"--BatchRunner:LeaderElection:LeaseDurationSeconds={lease.TotalSeconds}", "--BatchRunner:LeaderElection:RenewDeadlineSeconds=3",
            $"--BatchRunner:LeaderElection:RetryPeriodSeconds={retry.TotalSeconds}");
        await LeadsAsync(controller);

        output.WriteLine($"{@case}: leads {clock.Elapsed.TotalSeconds:F1} s after starting");
        // Starting the process (a few seconds on a busy machine) counts against it too.
        Assert.True(clock.Elapsed <= lease + retry + TimeSpan.FromSeconds(6), $"{@case}: led after {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task A_replica_that_cannot_take_the_lease_says_so_in_a_warning_and_never_claims_to_lead()
    {
        // The controller may not touch Leases in `default` (RBAC), so it can never lead there.
        var controller = StartController("replica-a",
            "--BatchRunner:LeaderElection:Namespace=default", "--BatchRunner:LeaderElection:LeaseDurationSeconds=3",
            "--BatchRunner:LeaderElection:RenewDeadlineSeconds=2", "--BatchRunner:LeaderElection:RetryPeriodSeconds=1");

        await Eventually.TrueAsync(async () => controller.Log.Contains("WRN", StringComparison.Ordinal), TimeSpan.FromSeconds(40), "a warning");

        Assert.Contains("replica-a waited", controller.Log, StringComparison.Ordinal);
        Assert.Contains("but the Lease could not be read", controller.Log, StringComparison.Ordinal);
        Assert.Equal((HttpStatusCode.OK, "ok: standby, waiting to lead (no leader)"), await controller.GetAsync("/readyz"));
        Assert.Equal(0, await controller.MetricAsync("batchrunner_leader"));
        Assert.DoesNotContain("replica-a leads", controller.Log, StringComparison.Ordinal);
    }

    private ControllerProcess StartController(string identity, params string[] args)
    {
        var controller = ControllerProcess.Start(fixture.ControllerKubeconfig, identity, [$"--BatchRunner:LeaderElection:LeaseName={_lease}", .. args]);
        _controllers.Add(controller);
        return controller;
    }

    private Task<V1Lease> LeaseAsync() => fixture.Admin.CoordinationV1.ReadNamespacedLeaseAsync(_lease, OperatorFixture.SystemNamespace);

    private async Task LeadsAsync(ControllerProcess controller) =>
        await Eventually.TrueAsync(
            async () => controller.Log.Contains($"{controller.Identity} leads", StringComparison.Ordinal) && (await LeaseAsync()).Spec.HolderIdentity == controller.Identity,
            Converge, $"{controller.Identity} leads");

    private static Task ReadyAsync(ControllerProcess controller) =>
        Eventually.TrueAsync(async () => (await controller.GetAsync("/readyz")).Status == HttpStatusCode.OK, Converge, $"{controller.Identity} is ready");

    /// <summary>
    /// Watches the Lease while the leader goes: when it was released (the holder emptied) and when
    /// <paramref name="successor"/> held it, both from the start of <paramref name="stopping"/>.
    /// </summary>
    private async Task<(TimeSpan Released, TimeSpan Led)> WatchHandOverAsync(Task stopping, string successor)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan? released = null;
        while (clock.Elapsed < Converge)
        {
            var holder = (await LeaseAsync()).Spec.HolderIdentity;
            if (holder == "" && released is null)
            {
                released = clock.Elapsed;
            }

            if (holder == successor)
            {
                await stopping;
                return (released ?? clock.Elapsed, clock.Elapsed);
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"{successor} did not lead within {Converge.TotalSeconds} s");
    }

    /// <summary>How long the Lease had no live holder while <paramref name="stopping"/> stopped its leader, if it led.</summary>
    private async Task<TimeSpan> LeaderlessGapAsync(Task stopping)
    {
        var live = _controllers.Where(c => !c.HasExited).Select(c => c.Identity).ToHashSet();
        var clock = Stopwatch.StartNew();
        TimeSpan? leaderless = null;
        while (clock.Elapsed < Converge)
        {
            var holder = (await LeaseAsync()).Spec.HolderIdentity;
            var stopped = stopping.IsCompleted;
            var alive = holder is { Length: > 0 } && live.Contains(holder) && !(_controllers.First(c => c.Identity == holder).HasExited);
            if (!alive && leaderless is null)
            {
                leaderless = clock.Elapsed;
            }

            if (alive && stopped)
            {
                await stopping;
                return leaderless is { } from ? clock.Elapsed - from : TimeSpan.Zero;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"no live leader within {Converge.TotalSeconds} s");
    }
}
