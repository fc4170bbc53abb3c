using BatchRunner.Kubernetes.Controller;
using k8s.LeaderElection;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace BatchRunner.Kubernetes.Tests;

public sealed class LeaderElectionTests
{
    private static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(15);
    private static readonly DateTime Renewed = new(2026, 12, 5, 10, 0, 0, DateTimeKind.Utc);

    public static TheoryData<string, LeaderElectionRecord, string, int, DateTime?> Leases => new()
    {
        { "released by client-go: empty holder", Record("", 1, Renewed), "", 1, Renewed },
        { "released by an older BatchRunner: no holder", Record(null, 1, Renewed), "", 1, Renewed },
        { "edited by hand: no holder and no times", Record(null, 15, null), "", 15, DateTime.UnixEpoch },
        { "edited by hand: a holder and no times", Record("ghost", 15, null), "ghost", 15, DateTime.UnixEpoch },
        { "a holder with a zero duration", Record("ghost", 0, Renewed), "ghost", 15, Renewed },
        { "a holder with a day's duration", Record("ghost", 86_400, Renewed), "ghost", 15, Renewed },
        { "a holder renewing as usual", Record("replica-a", 15, Renewed), "replica-a", 15, Renewed },
    };

    [Theory]
    [MemberData(nameof(Leases))]
    public void A_lease_reads_as_one_the_elector_can_take_or_wait_out(string @case, LeaderElectionRecord stored, string holder, int duration, DateTime? renewed)
    {
        var read = ReleasedLeaseLock.Normalize(stored, LeaseDuration);

        Assert.True((holder, duration, renewed) == (read.HolderIdentity, read.LeaseDurationSeconds, read.RenewTime), @case);
        // The elector creates a Lease when any of these is missing, which fails for one that exists.
        Assert.NotNull(read.HolderIdentity);
        Assert.NotNull(read.AcquireTime);
        Assert.NotNull(read.RenewTime);
    }

    [Fact]
    public void A_missing_lease_stays_missing_so_the_elector_creates_it()
    {
        Assert.Null(ReleasedLeaseLock.Normalize(null!, LeaseDuration));
    }

    [Fact]
    public async Task A_released_lease_is_taken_at_the_next_retry()
    {
        var store = new InMemoryLease(Record("", 1, Renewed));

        var led = await LeadsWithinAsync(new ReleasedLeaseLock(store.For("replica-b"), LeaseDuration, TimeProvider.System), TimeSpan.FromSeconds(5));

        Assert.True(led, "the elector takes a released Lease");
        Assert.Equal("replica-b", store.Stored!.HolderIdentity);
    }

    [Fact]
    public async Task A_lease_without_a_holder_is_taken_at_the_next_retry_though_the_library_alone_never_takes_it()
    {
        // KubernetesClient's elector alone tries to create a Lease without a holder, which exists: this test fails
        // when a newer library takes it, and then ReleasedLeaseLock can go.
        var bare = new InMemoryLease(Record(null, 1, Renewed));
        Assert.False(await LeadsWithinAsync(bare.For("replica-b"), TimeSpan.FromSeconds(1)), "the library alone leads");

        var wrapped = new InMemoryLease(Record(null, 1, Renewed));
        Assert.True(await LeadsWithinAsync(new ReleasedLeaseLock(wrapped.For("replica-b"), LeaseDuration, TimeProvider.System), TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_lease_whose_holder_died_with_a_days_duration_is_taken_after_this_replicas_lease_duration()
    {
        var store = new InMemoryLease(Record("ghost", 86_400, Renewed));

        var led = await LeadsWithinAsync(new ReleasedLeaseLock(store.For("replica-b"), TimeSpan.FromMilliseconds(400), TimeProvider.System), TimeSpan.FromSeconds(5));

        Assert.True(led, "the elector waits out this replica's lease duration, not the Lease's day");
    }

    [Fact]
    public void Waiting_behind_a_lease_nobody_renews_warns_after_several_lease_durations_and_again_later()
    {
        var start = new DateTimeOffset(Renewed);
        var watch = new LeaseWaitWatch(LeaseDuration, start);
        var lastChange = start.AddSeconds(1);

        Assert.Null(watch.Check(start.AddSeconds(30), lastChange, "ghost", null));
        var warning = watch.Check(start.AddSeconds(62), lastChange, "ghost", "Forbidden");
        Assert.Equal("waited 62s to lead (lease duration 15s), but its holder ghost has not renewed it for 61s; last error: Forbidden", warning);
        Assert.Null(watch.Check(start.AddSeconds(70), lastChange, "ghost", null));
        Assert.NotNull(watch.Check(start.AddSeconds(123), lastChange, "ghost", null));
    }

    [Fact]
    public void Waiting_behind_a_leader_that_renews_says_nothing()
    {
        var start = new DateTimeOffset(Renewed);
        var watch = new LeaseWaitWatch(LeaseDuration, start);

        for (var second = 0; second < 600; second += 2)
        {
            Assert.Null(watch.Check(start.AddSeconds(second), start.AddSeconds(second - 1), "replica-a", null));
        }
    }

    [Fact]
    public void A_lease_that_could_never_be_read_is_named_as_such()
    {
        var start = new DateTimeOffset(Renewed);

        var warning = new LeaseWaitWatch(LeaseDuration, start).Check(start.AddMinutes(2), null, null, null);

        Assert.Equal("waited 120s to lead (lease duration 15s), but the Lease could not be read", warning);
    }

    [Fact]
    public async Task The_lock_notes_when_the_lease_last_changed()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(Renewed));
        var store = new InMemoryLease(Record("replica-a", 15, Renewed));
        var leaseLock = new ReleasedLeaseLock(store.For("replica-b"), LeaseDuration, time);

        await leaseLock.GetAsync();
        var first = leaseLock.LastChangedAt;
        time.Advance(TimeSpan.FromSeconds(5));
        await leaseLock.GetAsync();
        Assert.Equal(first, leaseLock.LastChangedAt);

        store.Stored = Record("replica-a", 15, Renewed.AddSeconds(5));
        await leaseLock.GetAsync();
        Assert.Equal(time.GetUtcNow(), leaseLock.LastChangedAt);
        Assert.Equal("replica-a", leaseLock.LastHolder);
    }

    [Fact]
    public async Task A_refused_connection_while_acquiring_is_tried_again_though_the_library_alone_gives_up()
    {
        // The library's elector ends with the exception: the controller stopped for good on one refused connection.
        var bare = new InMemoryLease(null) { UnansweredCalls = 3 };
        await Assert.ThrowsAsync<HttpRequestException>(() => LeadsWithinAsync(bare.For("replica-a"), TimeSpan.FromSeconds(5), rethrow: true));

        var store = new InMemoryLease(null) { UnansweredCalls = 3 };
        var leaseLock = new ReleasedLeaseLock(store.For("replica-a"), LeaseDuration, TimeProvider.System);

        Assert.True(await LeadsWithinAsync(leaseLock, TimeSpan.FromSeconds(5)), "the elector leads once the API server answers");
        Assert.Equal("replica-a", store.Stored!.HolderIdentity);
        Assert.Null(leaseLock.LastUnanswered);
    }

    [Fact]
    public async Task A_renewal_that_gets_no_answer_is_tried_again_within_the_renew_deadline_and_the_lease_is_kept()
    {
        var store = new InMemoryLease(null);
        var leaseLock = new ReleasedLeaseLock(store.For("replica-a"), LeaseDuration, TimeProvider.System);
        using var elector = new LeaderElector(new LeaderElectionConfig(leaseLock)
        {
            LeaseDuration = TimeSpan.FromSeconds(4),
            RenewDeadline = TimeSpan.FromSeconds(3),
            RetryPeriod = TimeSpan.FromMilliseconds(50),
        });
        var leading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        elector.OnStartedLeading += () => leading.TrySetResult();
        using var stop = new CancellationTokenSource();
        var running = elector.RunUntilLeadershipLostAsync(stop.Token);
        await leading.Task.WaitAsync(TimeSpan.FromSeconds(5));

        // Five calls reset (a quarter of a second at this retry period), well within the renew deadline.
        store.UnansweredCalls = 5;
        // Until the elector has used them up (a busy machine slows its retries; the renew deadline is 3 s).
        for (var waited = 0; store.UnansweredCalls > 0 && waited < 50; waited++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50));
        }

        await Task.Delay(TimeSpan.FromMilliseconds(200));
        Assert.Equal(0, store.UnansweredCalls);
        Assert.False(running.IsCompleted, "the lease was lost on calls that got no answer");
        await stop.CancelAsync();
        await running.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private static async Task<bool> LeadsWithinAsync(ILock leaseLock, TimeSpan within, bool rethrow = false)
    {
        using var elector = new LeaderElector(new LeaderElectionConfig(leaseLock)
        {
            LeaseDuration = TimeSpan.FromMilliseconds(400),
            RenewDeadline = TimeSpan.FromMilliseconds(300),
            RetryPeriod = TimeSpan.FromMilliseconds(50),
        });
        var leading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        elector.OnStartedLeading += () => leading.TrySetResult();
        using var stop = new CancellationTokenSource();
        var running = elector.RunUntilLeadershipLostAsync(stop.Token);
        var led = await Task.WhenAny(leading.Task, Task.Delay(within), running) == leading.Task;
        if (rethrow && running.IsFaulted)
        {
            await running;
        }

        await stop.CancelAsync();
        await running.ContinueWith(_ => { }, TaskScheduler.Default);
        return led;
    }

    private static LeaderElectionRecord Record(string? holder, int duration, DateTime? renewed) => new()
    {
        HolderIdentity = holder!,
        LeaseDurationSeconds = duration,
        AcquireTime = renewed,
        RenewTime = renewed,
    };

    /// <summary>One Lease as the API server keeps it: create fails when it exists, update replaces it.</summary>
    private sealed class InMemoryLease(LeaderElectionRecord? stored)
    {
        public LeaderElectionRecord? Stored { get; set; } = stored;

        /// <summary>The next calls this many get no answer (a refused connection), as an API server that went away.</summary>
        public int UnansweredCalls { get; set; }

        public ILock For(string identity) => new Lock(this, identity);

        private void Answer()
        {
            if (UnansweredCalls > 0)
            {
                UnansweredCalls--;
                throw new HttpRequestException("Connection refused (127.0.0.1:6443)");
            }
        }

        private sealed class Lock(InMemoryLease lease, string identity) : ILock
        {
            public string Identity => identity;

            public Task<LeaderElectionRecord> GetAsync(CancellationToken cancellationToken = default)
            {
                lease.Answer();
                return lease.Stored is { } record ? Task.FromResult(Copy(record)) : throw NotFound();
            }

            public Task<bool> CreateAsync(LeaderElectionRecord record, CancellationToken cancellationToken = default)
            {
                lease.Answer();
                if (lease.Stored is not null)
                {
                    return Task.FromResult(false);
                }

                lease.Stored = Copy(record);
                return Task.FromResult(true);
            }

            public Task<bool> UpdateAsync(LeaderElectionRecord record, CancellationToken cancellationToken = default)
            {
                lease.Answer();
                lease.Stored = Copy(record);
                return Task.FromResult(true);
            }

            public string Describe() => "in-memory";

            private static LeaderElectionRecord Copy(LeaderElectionRecord r) => new()
            {
                HolderIdentity = r.HolderIdentity, LeaseDurationSeconds = r.LeaseDurationSeconds, AcquireTime = r.AcquireTime, RenewTime = r.RenewTime, LeaderTransitions = r.LeaderTransitions,
            };

            private static k8s.Autorest.HttpOperationException NotFound() => new("not found")
            {
                Response = new k8s.Autorest.HttpResponseMessageWrapper(new HttpResponseMessage(System.Net.HttpStatusCode.NotFound), ""),
            };
        }
    }
}
