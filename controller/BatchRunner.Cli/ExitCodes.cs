namespace BatchRunner.Cli;

/// <summary>What <c>batchrunner</c> exits with; scripts branch on these.</summary>
public static class ExitCodes
{
    public const int Succeeded = 0;
    public const int JobFailed = 1;
    public const int InvalidInput = 2;

    /// <summary>BatchRunner itself failed (a bug): the message says what, <c>--verbose</c> shows where (sysexits' EX_SOFTWARE).</summary>
    public const int InternalError = 70;

    /// <summary>The store cannot be used: its state database is corrupt, it cannot be written, the disk is full (EX_IOERR).</summary>
    public const int StoreUnusable = 74;

    /// <summary>A query ran past its --timeout and was stopped (as timeout(1) exits).</summary>
    public const int TimedOut = 124;

    /// <summary>Stopped by Ctrl-C, SIGTERM or <c>batchrunner cancel</c>: the shell's convention for an interrupt.</summary>
    public const int Cancelled = 130;
}
