using BatchRunner.Aws.Intake;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Intake;

namespace BatchRunner.Controller.Intake;

/// <summary>
/// Records requests in the local submission store, where <see cref="LocalSubmissionRunner"/> picks them up. A
/// request whose command cannot be found on this machine is refused now, rather than recorded to fail later.
/// </summary>
/// <param name="refuseBackend">The controller's answer for a backend (<see cref="Hosting.ControllerBackends.Refuse"/>); without one, local only.</param>
public sealed class LocalJobSink(SubmissionStore store, string workingDirectory, Func<Backend, SpecError?>? refuseBackend = null) : IJobSink
{
    public SpecError? RefuseBackend(Backend backend) => refuseBackend is { } refuse ? refuse(backend)
        : backend == Backend.Local ? null : new SpecError("spec.backend", $"{backend.Name} is not a backend of this controller (backends here: local)");

    public Backend DefaultBackend => Backend.Local;

    /// <summary>
    /// A rerun of a submission recorded from the same document: kept with it, answered by the runner once its run has
    /// finished (the same request again, a redelivery, changes nothing).
    /// </summary>
    public Task<SinkResult> RequestRerunAsync(JobRequest request, string rerun, CancellationToken cancellation)
    {
        if (store.Find(request.Namespace, request.Name) is not { } existing)
        {
            return Task.FromResult(SinkResult.Refused($"a rerun of BatchJob {request.Namespace}/{request.Name} was asked, and no such BatchJob exists"));
        }

        var sent = request.ContentHashWithoutRerun;
        if (existing.ContentHash != sent)
        {
            return Task.FromResult(SinkResult.Collision(
                $"a rerun of BatchJob {request.Namespace}/{request.Name} must carry the document it was created from ({existing.ContentHash}); this one is {sent}"));
        }

        return Task.FromResult(store.RequestRerun(request.Namespace, request.Name, rerun) ? SinkResult.RerunRequested : SinkResult.AlreadyRecorded);
    }

    public async Task<SinkResult> RecordAsync(JobRequest request, CancellationToken cancellation)
    {
        try
        {
            // Only local processes run from this machine's folders; another backend runs the command in its image.
            if (request.Job.Spec.Backend == Backend.Local)
            {
                LocalExecutor.CheckCommandExists(request.Job, workingDirectory);
            }
        }
        catch (InvalidSpecException e)
        {
            // Recorded earlier, when the command was there: a redelivery of it is still the same job.
            return store.Find(request.Namespace, request.Name) is { } existing && existing.ContentHash == request.ContentHash
                ? SinkResult.AlreadyRecorded
                : SinkResult.Refused(IntakeRequestReader.Describe(e.Errors));
        }

        var result = await store.RecordAsync(
            new Submission(request.Namespace, request.Name, request.ContentHash, request.Document, "sqs:" + request.MessageId), cancellation).ConfigureAwait(false);
        return result.Outcome switch
        {
            RecordOutcome.Created => SinkResult.Created,
            RecordOutcome.AlreadyRecorded => SinkResult.AlreadyRecorded,
            _ => SinkResult.Collision($"BatchJob {request.Namespace}/{request.Name} already exists with different content ({result.ExistingContentHash})"),
        };
    }
}
