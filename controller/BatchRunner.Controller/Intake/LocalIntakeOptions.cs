using System.ComponentModel.DataAnnotations;

namespace BatchRunner.Controller.Intake;

/// <summary>
/// <c>BatchRunner:Local</c>: the controller without a cluster (<c>BatchRunner:Kubernetes:Enabled=false</c>).
/// Requests from the queue are recorded in the local store and run on this machine by the local backend.
/// </summary>
public sealed class LocalIntakeOptions
{
    public const string Section = "BatchRunner:Local";

    /// <summary>The store root, as the CLI's <c>--store</c>; default <c>$BATCHRUNNER_STORE</c>, else <c>./.batchrunner</c>.</summary>
    public string? StoreRoot { get; init; }

    /// <summary>Where each index's command runs (relative command paths resolve against it); default the current directory.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>BatchJobs run at once; each runs up to its own <c>spec.parallelism</c> processes.</summary>
    [Range(1, 64)]
    public int MaxConcurrentJobs { get; init; } = 2;

    /// <summary>How often the runner looks for submissions recorded by another process (its own are seen at once).</summary>
    [Range(1, 3_600)]
    public int PollIntervalSeconds { get; init; } = 5;

    /// <summary>How long to wait before trying again a submission whose run is busy in another process.</summary>
    [Range(1, 3_600)]
    public int RetryDelaySeconds { get; init; } = 30;

    /// <summary>Starts of one submission, at most, when its runner keeps failing (not when its indexes fail).</summary>
    [Range(1, 100)]
    public int MaxStarts { get; init; } = 5;

    public string ResolveStoreRoot()
    {
        var chosen = StoreRoot ?? Environment.GetEnvironmentVariable("BATCHRUNNER_STORE");
        return Path.GetFullPath(string.IsNullOrEmpty(chosen) ? ".batchrunner" : chosen);
    }

    public string ResolveWorkingDirectory() => Path.GetFullPath(string.IsNullOrEmpty(WorkingDirectory) ? Environment.CurrentDirectory : WorkingDirectory);
}
