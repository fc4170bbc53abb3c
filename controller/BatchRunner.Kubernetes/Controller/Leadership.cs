using k8s;
using k8s.Autorest;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>Where the leader lease lives and how long it lasts.</summary>
public sealed record LeadershipSettings(string Namespace, string LeaseName, string Identity, TimeSpan LeaseDuration, TimeSpan RenewDeadline, TimeSpan RetryPeriod);

/// <summary>Leadership was lost while the process still ran: it must stop, as client-go's controllers do.</summary>
public sealed class LeadershipLostException(string message) : Exception(message);

/// <summary>
/// Runs work only while this replica holds the Lease, so that with two replicas only one reconciles. A replica
/// that dies stops renewing and the other takes over when the lease expires; one that shuts down cleanly releases
/// the lease (as client-go does: an empty holder), so the other takes over at its next retry.
/// </summary>
public sealed class Leadership(IKubernetes client, LeadershipSettings settings, ILogger<Leadership> log, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private volatile bool _leading;
    private volatile string? _lastError;

    public bool IsLeader => _leading;

    /// <summary>Who holds the Lease as last read (empty: nobody), or null before the first read.</summary>
    public string? ObservedLeader { get; private set; }

    public async Task RunAsync(Func<CancellationToken, Task> whileLeading, Action<bool>? leadingChanged, CancellationToken cancellation)
    {
        var leaseLock = new ReleasedLeaseLock(
            new LeaseLock(client, settings.Namespace, settings.LeaseName, settings.Identity), settings.LeaseDuration, _time);
        using var elector = new LeaderElector(new LeaderElectionConfig(leaseLock)
        {
            LeaseDuration = settings.LeaseDuration,
            RenewDeadline = settings.RenewDeadline,
            RetryPeriod = settings.RetryPeriod,
        });
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        Task work = Task.CompletedTask;
        Task renewing = Task.CompletedTask;
        var started = new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously);
        elector.OnNewLeader += leader =>
        {
            ObservedLeader = leader;
            log.LogInformation("Leader of {Lease} is {Leader}", settings.LeaseName, string.IsNullOrEmpty(leader) ? "nobody (released)" : leader);
        };
        elector.OnError += e =>
        {
            _lastError = e.Message;
            log.LogDebug(e, "Leader election on {Lease}: {Message}", settings.LeaseName, e.Message);
        };
        elector.OnStartedLeading += () =>
        {
            _leading = true;
            leadingChanged?.Invoke(true);
            log.LogInformation("{Identity} leads {Lease}", settings.Identity, settings.LeaseName);
            work = Task.Run(() => whileLeading(leading.Token), CancellationToken.None);
            started.TrySetResult(work);
        };

        log.LogInformation("{Identity} waiting to lead {Lease} in {Namespace}", settings.Identity, settings.LeaseName, settings.Namespace);
        try
        {
            // The elector stops with the leadership (the finally below), for whatever reason it ends, so that the
            // release waits for its last renewal rather than racing it.
            renewing = elector.RunUntilLeadershipLostAsync(leading.Token);
            _ = WarnWhileWaitingAsync(leaseLock, leading.Token);
            // Work that ends on its own (it failed) ends the leadership too: the process restarts clean.
            var first = await Task.WhenAny(renewing, started.Task.Unwrap()).ConfigureAwait(false);
            await first.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Shutting down.
        }
        finally
        {
            var wasLeading = _leading;
            _leading = false;
            await leading.CancelAsync().ConfigureAwait(false);
            await work.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (wasLeading)
            {
                // A renewal still in flight would change the Lease under the release (a Conflict): let the elector stop first.
                await renewing.WaitAsync(settings.RenewDeadline, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                leadingChanged?.Invoke(false);
                await ReleaseAsync().ConfigureAwait(false);
            }
        }

        if (!cancellation.IsCancellationRequested)
        {
            throw new LeadershipLostException($"{settings.Identity} lost the lease {settings.LeaseName}");
        }
    }

    /// <summary>Until this replica leads: a warning when it has waited far longer than a lease lasts for a Lease nobody renews.</summary>
    private async Task WarnWhileWaitingAsync(ReleasedLeaseLock leaseLock, CancellationToken cancellation)
    {
        var watch = new LeaseWaitWatch(settings.LeaseDuration, _time.GetUtcNow());
        using var timer = new PeriodicTimer(settings.RetryPeriod, _time);
        try
        {
            while (!_leading && await timer.WaitForNextTickAsync(cancellation).ConfigureAwait(false))
            {
                if (!_leading && watch.Check(_time.GetUtcNow(), leaseLock.LastChangedAt, leaseLock.LastHolder, leaseLock.LastUnanswered ?? _lastError) is { } warning)
                {
                    log.LogWarning("{Identity} {Warning} ({Lease} in {Namespace})", settings.Identity, warning, settings.LeaseName, settings.Namespace);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped waiting: shutting down.
        }
    }

    /// <summary>
    /// Hands the lease back on a clean shutdown, as client-go does: an empty holder (not a missing one, which older
    /// electors cannot take) and a one-second duration. A Conflict (the Lease changed since it was read) is read again,
    /// a few times, as long as this replica still holds it. Never throws (the lease expires anyway).
    /// </summary>
    private async Task ReleaseAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            for (var attempt = 1; ; attempt++)
            {
                var lease = await client.CoordinationV1.ReadNamespacedLeaseAsync(settings.LeaseName, settings.Namespace, cancellationToken: timeout.Token).ConfigureAwait(false);
                if (lease.Spec?.HolderIdentity != settings.Identity)
                {
                    return;
                }

                var now = _time.GetUtcNow().UtcDateTime;
                lease.Spec.HolderIdentity = "";
                lease.Spec.LeaseDurationSeconds = 1;
                lease.Spec.AcquireTime = now;
                lease.Spec.RenewTime = now;
                try
                {
                    await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, settings.LeaseName, settings.Namespace, cancellationToken: timeout.Token).ConfigureAwait(false);
                    log.LogInformation("{Identity} released {Lease}", settings.Identity, settings.LeaseName);
                    return;
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict && attempt < 3)
                {
                    // Changed between the read and the write: read it again.
                }
            }
        }
        catch (Exception e) when (e is HttpOperationException or OperationCanceledException or HttpRequestException)
        {
            log.LogWarning("Could not release {Lease} ({Message}); it expires in {Seconds}s", settings.LeaseName, e.Message, settings.LeaseDuration.TotalSeconds);
        }
    }
}
