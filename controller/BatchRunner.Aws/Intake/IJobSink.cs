using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Intake;

/// <summary>
/// Where an accepted request is recorded as a BatchJob: the Kubernetes API (a custom resource) or the local
/// submission store. Defined here, where the intake consumes it. A message is deleted only after
/// <see cref="RecordAsync"/> returned, so an implementation must have made the job durable by then, and must be
/// idempotent: recording the same request again (a redelivery) finds the first job and says so.
/// </summary>
public interface IJobSink
{
    /// <summary>
    /// Why a request naming <paramref name="backend"/> is refused rather than recorded (a backend the controller does
    /// not have, or has disabled), naming <c>spec.backend</c> and the backends it has; null when it is taken.
    /// </summary>
    SpecError? RefuseBackend(Backend backend);

    /// <summary>The backend of a request that names none: a cluster's queue door defaults as kubectl does (kubernetes).</summary>
    Backend DefaultBackend { get; }

    /// <summary>
    /// Records the job under its namespace and name. Throws on a transient failure (API unavailable, timeout, a
    /// full disk): the message is then left for redelivery, never dead-lettered.
    /// </summary>
    Task<SinkResult> RecordAsync(JobRequest request, CancellationToken cancellation);

    /// <summary>
    /// A request to rerun indexes of a job recorded earlier (the same document, carrying the
    /// <see cref="Core.Runs.RerunRequest.Annotation"/> annotation): handed to the job, idempotently.
    /// </summary>
    Task<SinkResult> RequestRerunAsync(JobRequest request, string rerun, CancellationToken cancellation) =>
        Task.FromResult(SinkResult.Refused($"this controller takes no rerun requests for {request.Namespace}/{request.Name}"));
}

/// <summary>One request to record: the job, its canonical document and content hash, and the message it came in.</summary>
public sealed record JobRequest(BatchJob Job, string Document, string ContentHash, string MessageId)
{
    public string Namespace => Job.Metadata.Namespace;

    public string Name => Job.Metadata.Name;

    /// <summary>
    /// The content hash of the document without its rerun annotation: a rerun request carries the document its job was
    /// created from, so this is the recorded job's hash exactly when it asks for that job.
    /// </summary>
    public string ContentHashWithoutRerun
    {
        get
        {
            var annotations = new Dictionary<string, string>(Job.Metadata.Annotations, StringComparer.Ordinal);
            annotations.Remove(Core.Runs.RerunRequest.Annotation);
            return BatchJobDocument.Write(Job with { Metadata = Job.Metadata with { Annotations = annotations } }).ContentHash;
        }
    }
}

public enum SinkOutcome
{
    /// <summary>A new job was recorded.</summary>
    Created,

    /// <summary>The same job (same content hash) was already recorded: a redelivery or a duplicate.</summary>
    AlreadyRecorded,

    /// <summary>A job of that namespace and name exists with other content: this request is refused.</summary>
    Collision,

    /// <summary>The sink refused the job for good (its API said it is invalid, or its command cannot run here).</summary>
    Refused,

    /// <summary>A rerun of a recorded job was asked of it (or had been, by an earlier delivery).</summary>
    RerunRequested,
}

/// <summary>What a sink did with a request; <see cref="Reason"/> says why for a collision or a refusal.</summary>
public sealed record SinkResult(SinkOutcome Outcome, string? Reason = null)
{
    public static readonly SinkResult Created = new(SinkOutcome.Created);
    public static readonly SinkResult AlreadyRecorded = new(SinkOutcome.AlreadyRecorded);

    public static SinkResult Collision(string reason) => new(SinkOutcome.Collision, reason);

    public static SinkResult Refused(string reason) => new(SinkOutcome.Refused, reason);

    public static readonly SinkResult RerunRequested = new(SinkOutcome.RerunRequested);
}
