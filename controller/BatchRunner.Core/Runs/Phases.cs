namespace BatchRunner.Core.Runs;

/// <summary>Where a whole run stands; the same names as a BatchJob's <c>status.phase</c>.</summary>
public enum RunPhase
{
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>How one attempt of one index ended, as written to its ledger row.</summary>
public enum AttemptOutcome
{
    Succeeded,

    /// <summary>The process exited with a non-zero code or was killed by a signal.</summary>
    Failed,

    /// <summary>The attempt ran past <c>spec.timeoutSeconds</c> and its process tree was killed.</summary>
    TimedOut,

    /// <summary>The command could not be started at all.</summary>
    FailedToStart,

    /// <summary>The run was cancelled, hit its deadline, or its runner died while this attempt ran.</summary>
    Interrupted,
}

public static class PhaseNames
{
    public static string ToLedger(this AttemptOutcome outcome) => outcome switch
    {
        AttemptOutcome.Succeeded => "succeeded",
        AttemptOutcome.Failed => "failed",
        AttemptOutcome.TimedOut => "timed_out",
        AttemptOutcome.FailedToStart => "failed_to_start",
        _ => "interrupted",
    };

    /// <summary>Whether another attempt can help: an interruption is not the workload's fault and never uses up a retry.</summary>
    public static bool CountsAgainstRetries(this AttemptOutcome outcome) => outcome is not AttemptOutcome.Interrupted;
}
