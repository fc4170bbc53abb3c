using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Intake;

/// <summary>What to do with a message once it has been read and offered to the sink.</summary>
internal abstract record Decision
{
    /// <summary>The job is recorded (now, or by an earlier delivery): delete the message.</summary>
    public sealed record Recorded(IntakeRequest Request, bool Duplicate) : Decision;

    /// <summary>The request can never become a job: dead-letter it with the reason, then delete it.</summary>
    public sealed record Refused(Rejection Rejection, IntakeRequest? Request) : Decision;
}

/// <summary>
/// One message, top to bottom: 1. size and encoding; 2. parse (the CLI's parser and errors); 3. identity;
/// 4. a backend the sink records; 5. the tenant guard; 6. record it. Every refusal is a <see cref="Decision.Refused"/>;
/// a transient failure of the sink is thrown, for the caller to retry the message later.
/// </summary>
internal sealed class MessageProcessor(IJobSink sink, TenantGuard guard, int maxBodyBytes)
{
    public async Task<Decision> DecideAsync(Lease lease, CancellationToken cancellation)
    {
        // 1-3. The body, read as the CLI reads a file, named when it has no name.
        IntakeReadResult read;
        try
        {
            read = IntakeRequestReader.Read(lease.Message.Body, lease.StringAttribute(RequestIdentity.RequestIdAttribute), lease.DeduplicationId, maxBodyBytes, sink.DefaultBackend);
        }
        catch (Exception e)
        {
            // Reading is pure: whatever it throws on, it would throw on again at every delivery. Refuse, don't retry.
            read = IntakeReadResult.Refuse(RejectCode.InvalidSpec, $"the document could not be read: {e.Message}");
        }

        if (read.Rejection is { } rejection)
        {
            return new Decision.Refused(rejection, null);
        }

        var request = read.Request!;
        var job = request.Job;

        // 4. A backend this controller records jobs for.
        if (sink.RefuseBackend(job.Spec.Backend) is { } unavailable)
        {
            return new Decision.Refused(new Rejection(RejectCode.Unsupported, unavailable.ToString()), request);
        }

        // 5. The tenant guard.
        if (guard.Check(job) is { } refusal)
        {
            return new Decision.Refused(new Rejection(RejectCode.TenantRefused, refusal), request);
        }

        // 6. Record it; the sink says whether it is new, the same as before, or someone else's name.
        //    A rerun request (the document with the rerun annotation) goes to the job recorded before.
        var jobRequest = new JobRequest(job, request.Document, request.ContentHash, lease.MessageId);
        var result = job.Metadata.Annotations.TryGetValue(RerunRequest.Annotation, out var rerun)
            ? await sink.RequestRerunAsync(jobRequest, RerunRequest.Tagged(rerun, lease.MessageId), cancellation).ConfigureAwait(false)
            : await sink.RecordAsync(jobRequest, cancellation).ConfigureAwait(false);
        return result.Outcome switch
        {
            SinkOutcome.Created or SinkOutcome.RerunRequested => new Decision.Recorded(request, Duplicate: false),
            SinkOutcome.AlreadyRecorded => new Decision.Recorded(request, Duplicate: true),
            SinkOutcome.Collision => new Decision.Refused(new Rejection(RejectCode.NameCollision,
                result.Reason ?? $"BatchJob {request.Key} already exists with different content"), request),
            _ => new Decision.Refused(new Rejection(RejectCode.Unsupported, result.Reason ?? "the sink refused the job"), request),
        };
    }

    }
