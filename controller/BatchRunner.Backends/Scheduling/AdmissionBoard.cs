using BatchRunner.Core.Scheduling;

namespace BatchRunner.Backends.Scheduling;

/// <summary>
/// The scheduler's latest decisions, where the host's reconcilers read them: a BatchJob's allowance, and why the rest
/// of its indexes wait. Written by one scheduling loop (the leader's), read by many workers. Before its first cycle
/// nothing is decided, and a host dispatches nothing new: a new leader does not start what the old one held back.
/// </summary>
public sealed class AdmissionBoard
{
    private volatile IReadOnlyDictionary<string, Standing>? _standings;

    /// <summary>The BatchJob's standing (namespace/name), or null when the scheduler has not decided for it yet.</summary>
    public Standing? Find(string key) => _standings is { } standings && standings.TryGetValue(key, out var standing) ? standing : null;

    /// <summary>Publishes a cycle's decisions; returns the BatchJobs whose standing changed enough to be worth a reconcile.</summary>
    public IReadOnlyList<string> Publish(IReadOnlyDictionary<string, Standing> standings, DateTimeOffset now)
    {
        var before = _standings;
        _standings = standings;
        if (before is null)
        {
            return [.. standings.Keys];
        }

        return [.. standings.Where(s => !before.TryGetValue(s.Key, out var old) || Differs(old, s.Value, now)).Select(s => s.Key)];
    }

    /// <summary>
    /// Whether a new standing is worth writing: the allowance, the reason, the place or the message changed, or an
    /// estimate moved by more than a tenth of the time to it (and at least 30 s), so a status is not rewritten on
    /// every cycle as estimates drift by seconds.
    /// </summary>
    public static bool Differs(Standing old, Standing now, DateTimeOffset at) =>
        old.Allowance != now.Allowance || old.Wanted != now.Wanted || old.Reason != now.Reason || old.Position != now.Position || old.Message != now.Message
        || old.DelegatedTo != now.DelegatedTo
        || Moved(old.StartP50, now.StartP50, at) || Moved(old.StartP90, now.StartP90, at) || Moved(old.FinishP50, now.FinishP50, at) || Moved(old.FinishP90, now.FinishP90, at);

    /// <summary>The estimate to show: the one shown already unless the new one moved past the tolerance <see cref="Differs"/> uses.</summary>
    public static DateTimeOffset? Settled(DateTimeOffset? shown, DateTimeOffset? estimate, DateTimeOffset at) =>
        Moved(shown, estimate, at) ? estimate : shown;

    private static bool Moved(DateTimeOffset? old, DateTimeOffset? now, DateTimeOffset at)
    {
        if (old is null || now is null)
        {
            return old != now;
        }

        var tolerance = TimeSpan.FromSeconds(Math.Max(30, Math.Abs((now.Value - at).TotalSeconds) / 10));
        return (old.Value - now.Value).Duration() > tolerance;
    }
}

/// <summary>A standing's estimates and reason as people read them (a condition's message, a printer column, the CLI).</summary>
public static class StandingText
{
    /// <summary><c>starts in ~4m (P90 7m), done in ~1h10m (P90 1h55m)</c>; null without estimates.</summary>
    public static string? Eta(Standing standing, DateTimeOffset now)
    {
        if (standing.FinishP50 is not { } finish || standing.FinishP90 is not { } finish90)
        {
            return null;
        }

        var done = $"done in ~{DurationText.Short(finish - now)} (P90 {DurationText.Short(finish90 - now)})";
        return standing.Allowance > 0 || standing.StartP50 is not { } start || standing.StartP90 is not { } start90 || start <= now
            ? done
            : $"starts in ~{DurationText.Short(start - now)} (P90 {DurationText.Short(start90 - now)}), {done}";
    }

    /// <summary>The Admitted condition's message: what it may run, why the rest waits, its place, the estimate.</summary>
    public static string Message(Standing standing, DateTimeOffset now)
    {
        var eta = Eta(standing, now) is { } text ? $"; {text}" : "";
        return standing.IsWaiting
            ? $"{standing.Allowance} of {standing.Wanted} indexes admitted in queue {standing.Queue}{(standing.Position is { } p ? $", position {p}" : "")}: {standing.Message}{eta}"
            : standing.DelegatedTo is not null ? $"queue {standing.Queue}: {standing.Message}"
            : $"{standing.Allowance} indexes admitted at once in queue {standing.Queue}{eta}";
    }
}
