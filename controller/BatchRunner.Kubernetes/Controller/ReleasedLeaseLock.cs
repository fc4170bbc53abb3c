using k8s.LeaderElection;

namespace BatchRunner.Kubernetes.Controller;

/// <summary>
/// The Lease lock the elector uses, reading a Lease the way client-go does. KubernetesClient's
/// <see cref="LeaderElector"/> (21.0.8) treats a Lease whose holder or times are missing as absent and tries to
/// <em>create</em> it; the API server answers AlreadyExists every time, so a released Lease (client-go releases by
/// clearing the holder) or one edited by hand is never acquired and every replica waits forever. Here such a record
/// reads as an existing Lease with an empty holder (free to take at once) or with fixed times (expires after one lease
/// duration), so the elector updates it instead. The duration of a held Lease is taken from this replica's settings,
/// shared by every replica of a Deployment, so a hand-written duration cannot strand the controllers either.
/// </summary>
public sealed class ReleasedLeaseLock(ILock inner, TimeSpan leaseDuration, TimeProvider time) : ILock
{
    /// <summary>Stands in for a missing acquire or renew time: fixed, so an unchanged Lease stays unchanged between reads.</summary>
    private static readonly DateTime MissingTime = DateTime.UnixEpoch;

    private LeaderElectionRecord? _lastSeen;

    public string Identity => inner.Identity;

    /// <summary>When a read last found the Lease different from the read before (held, renewed, released, taken).</summary>
    public DateTimeOffset? LastChangedAt { get; private set; }

    /// <summary>The holder of the Lease as last read; empty when nobody holds it.</summary>
    public string? LastHolder => _lastSeen?.HolderIdentity;

    public async Task<LeaderElectionRecord> GetAsync(CancellationToken cancellationToken = default)
    {
        var record = Normalize(await inner.GetAsync(cancellationToken).ConfigureAwait(false), leaseDuration);
        if (!Equals(record, _lastSeen))
        {
            _lastSeen = record;
            LastChangedAt = time.GetUtcNow();
        }

        return record;
    }

    public Task<bool> CreateAsync(LeaderElectionRecord record, CancellationToken cancellationToken = default) => inner.CreateAsync(record, cancellationToken);

    public Task<bool> UpdateAsync(LeaderElectionRecord record, CancellationToken cancellationToken = default) => inner.UpdateAsync(record, cancellationToken);

    public string Describe() => inner.Describe();

    /// <summary>
    /// The record as the elector should see it. A missing record stays missing (the Lease does not exist: create it).
    /// </summary>
    public static LeaderElectionRecord Normalize(LeaderElectionRecord record, TimeSpan leaseDuration)
    {
        if (record is null)
        {
            return null!;
        }

        var held = !string.IsNullOrEmpty(record.HolderIdentity);
        return new LeaderElectionRecord
        {
            HolderIdentity = held ? record.HolderIdentity : "",
            LeaseDurationSeconds = held ? (int)leaseDuration.TotalSeconds : record.LeaseDurationSeconds,
            AcquireTime = record.AcquireTime ?? MissingTime,
            RenewTime = record.RenewTime ?? MissingTime,
            LeaderTransitions = record.LeaderTransitions,
        };
    }
}
