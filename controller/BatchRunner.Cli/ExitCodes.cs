namespace BatchRunner.Cli;

/// <summary>What <c>batchrunner</c> exits with; scripts branch on these.</summary>
public static class ExitCodes
{
    public const int Succeeded = 0;
    public const int JobFailed = 1;
    public const int InvalidInput = 2;

    /// <summary>Stopped by Ctrl-C, SIGTERM or <c>batchrunner cancel</c>: the shell's convention for an interrupt.</summary>
    public const int Cancelled = 130;
}
