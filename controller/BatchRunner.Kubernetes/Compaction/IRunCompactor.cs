namespace BatchRunner.Kubernetes.Compaction;

/// <summary>
/// Compacts one finished run of a BatchJob in its results store (Parquet plus the run manifest). Defined here, where
/// the operator consumes it; the controller host implements it with BatchRunner.Local's compactor, so this project
/// needs no DuckDB. Idempotent: a run whose manifest already records a compaction is left as it is.
/// Anything thrown is retried with backoff; what retrying cannot fix comes back as <see cref="CompactionResult.NothingToCompact"/>.
/// </summary>
public interface IRunCompactor
{
    Task<CompactionOutcome> CompactAsync(CompactionTarget target, CancellationToken cancellation);
}

/// <summary>A run to compact: the store (<c>s3://bucket/prefix</c> or a folder), the BatchJob's name and the run id.</summary>
/// <param name="Reruns">Reruns the run has had: after one, a compaction that holds fewer attempts than the store is made again.</param>
public sealed record CompactionTarget(string Store, string BatchJob, string RunId, int Reruns = 0);

public enum CompactionResult
{
    /// <summary>Compacted now.</summary>
    Compacted,

    /// <summary>The run manifest already recorded a compaction (a controller restarted, another leader did it).</summary>
    AlreadyCompacted,

    /// <summary>The store holds nothing of the run to compact (no ledger rows): not retried.</summary>
    NothingToCompact,
}

/// <param name="Message">What was done, for the condition: counts and bytes, or why there was nothing to do.</param>
public sealed record CompactionOutcome(CompactionResult Result, string Message);
