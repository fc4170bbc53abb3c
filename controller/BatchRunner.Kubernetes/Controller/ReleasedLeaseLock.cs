using System.Net;
using k8s.Autorest;
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
/// <para>
/// A call that never got an answer (a connection refused or reset, a timeout) is a failed attempt the elector tries
/// again, as client-go's is: the library's elector catches only HTTP answers, so one refused connection while
/// acquiring ended the election for good, and one while renewing lost the lease at once (found by the fault tier).
/// </para>
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

    /// <summary>The last call that got no answer, and why (for a warning while waiting); null once one was answered.</summary>
    public string? LastUnanswered { get; private set; }

    public async Task<LeaderElectionRecord> GetAsync(CancellationToken cancellationToken = default)
    {
        LeaderElectionRecord read;
        try
        {
            read = await inner.GetAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsUnanswered(e, cancellationToken))
        {
            // An answer the elector takes as "not now": it tries again after its retry period.
            LastUnanswered = e.Message;
            throw new HttpOperationException($"no answer from the API server: {e.Message}", e)
            {
                Response = new HttpResponseMessageWrapper(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable), ""),
            };
        }

        LastUnanswered = null;
        var record = Normalize(read, leaseDuration);
        if (!Equals(record, _lastSeen))
        {
            _lastSeen = record;
            LastChangedAt = time.GetUtcNow();
        }

        return record;
    }

    public Task<bool> CreateAsync(LeaderElectionRecord record, CancellationToken cancellationToken = default) =>
        AnsweredAsync(() => inner.CreateAsync(record, cancellationToken), cancellationToken);

    public Task<bool> UpdateAsync(LeaderElectionRecord record, CancellationToken cancellationToken = default) =>
        AnsweredAsync(() => inner.UpdateAsync(record, cancellationToken), cancellationToken);

    /// <summary>A write that got no answer did not take: false, and the elector tries again.</summary>
    private async Task<bool> AnsweredAsync(Func<Task<bool>> write, CancellationToken cancellationToken)
    {
        try
        {
            var done = await write().ConfigureAwait(false);
            LastUnanswered = null;
            return done;
        }
        catch (Exception e) when (IsUnanswered(e, cancellationToken))
        {
            LastUnanswered = e.Message;
            return false;
        }
    }

    /// <summary>The call got no answer: refused, reset, cut, or timed out (not cancelled by the caller).</summary>
    private static bool IsUnanswered(Exception e, CancellationToken cancellationToken) =>
        e is HttpRequestException or IOException or System.Net.Sockets.SocketException
        || e is OperationCanceledException && !cancellationToken.IsCancellationRequested;

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
