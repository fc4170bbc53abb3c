using System.Collections.Concurrent;
using BatchRunner.Aws.Intake;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Tests.Support;

/// <summary>An <see cref="IJobSink"/> in memory, with the same rules as the real ones, and a hook to slow it down or fail it.</summary>
public sealed class MemorySink : IJobSink
{
    private readonly ConcurrentDictionary<string, string> _jobs = new(StringComparer.Ordinal);

    public IReadOnlySet<Backend> Backends { get; init; } = new HashSet<Backend> { Backend.Local, Backend.Kubernetes };

    public SpecError? RefuseBackend(Backend backend) => Backends.Contains(backend) ? null
        : new SpecError("spec.backend", $"{backend.Name} is not a backend of this sink (backends here: {string.Join(", ", Backends.Select(b => b.Name))})");

    public Backend DefaultBackend { get; init; } = Backend.Local;

    /// <summary>Runs before each record: a delay, or a throw for a transient failure.</summary>
    public Func<JobRequest, CancellationToken, Task>? Before { get; set; }

    /// <summary>Every request offered, in order.</summary>
    public ConcurrentQueue<JobRequest> Calls { get; } = new();

    public IReadOnlyDictionary<string, string> Jobs => _jobs;

    public async Task<SinkResult> RecordAsync(JobRequest request, CancellationToken cancellation)
    {
        Calls.Enqueue(request);
        if (Before is { } before)
        {
            await before(request, cancellation).ConfigureAwait(false);
        }

        var key = $"{request.Namespace}/{request.Name}";
        if (_jobs.TryAdd(key, request.ContentHash))
        {
            return SinkResult.Created;
        }

        return _jobs[key] == request.ContentHash ? SinkResult.AlreadyRecorded : SinkResult.Collision($"BatchJob {key} already exists with different content");
    }
}
