using System.Collections.Concurrent;
using BatchRunner.Backends;
using BatchRunner.Controller.Hosting;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Intake;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller.Intake;

/// <summary>
/// Runs the submissions the local intake recorded, at most <see cref="LocalIntakeOptions.MaxConcurrentJobs"/> at once,
/// oldest first, each on the backend its spec names among the controller's (<see cref="ControllerBackends"/>: local
/// processes, and AWS Batch or any other registered), followed to its end by the <see cref="BackendDriver"/> as the
/// CLI follows a run. A submission being run when the controller stopped (or died) stays Running in the store and is
/// resumed at the next start: local processes are found by run id (the executor kills what the dead runner left and
/// reruns only the indexes that had not succeeded), a remote backend's state is kept beside the store.
/// On when the controller runs without Kubernetes.
/// </summary>
public sealed class LocalSubmissionRunner(
    IServiceProvider services,
    IOptions<KubernetesOptions> kubernetes,
    IOptions<LocalIntakeOptions> options,
    ControllerBackends backends,
    TimeProvider time,
    ILoggerFactory logs) : BackgroundService
{
    private readonly ILogger<LocalSubmissionRunner> _log = logs.CreateLogger<LocalSubmissionRunner>();
    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (kubernetes.Value.Enabled)
        {
            return;
        }

        var settings = options.Value;
        var store = services.GetRequiredService<SubmissionStore>();
        var storeRoot = settings.ResolveStoreRoot();
        var registry = backends.Registry(() => new LocalBackend(
            new LocalExecutor(new LocalRunOptions { StoreRoot = storeRoot, WorkingDirectory = settings.ResolveWorkingDirectory() }, time, logs.CreateLogger<LocalExecutor>()),
            storeRoot, time, stoppingToken));
        _log.LogInformation("Running submissions from {Store}, {MaxJobs} BatchJob(s) at once, on backends {Backends}",
            store.Path, settings.MaxConcurrentJobs, string.Join(", ", registry.Names.Select(b => b.Name)));
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var free = settings.MaxConcurrentJobs - _running.Count;
                if (free > 0)
                {
                    foreach (var submission in store.Runnable(free, [.. _running.Keys]))
                    {
                        var task = Task.Run(() => RunAsync(store, registry, storeRoot, submission, settings, stoppingToken), CancellationToken.None);
                        _running[submission.Key] = task;
                        _ = task.ContinueWith(_ => _running.TryRemove(submission.Key, out var _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    }
                }

                // Wake for a new submission, a finished run (a free slot), or the poll (deferred ones, other writers).
                var finished = _running.IsEmpty ? Task.Delay(Timeout.Infinite, stoppingToken) : Task.WhenAny(_running.Values);
                await Task.WhenAny(store.WaitForRecordAsync(TimeSpan.FromSeconds(settings.PollIntervalSeconds), stoppingToken), finished).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: the runs stop with the same token and are resumed at the next start.
        }

        await Task.WhenAll(_running.Values).ConfigureAwait(false);
    }

    private async Task RunAsync(SubmissionStore store, BackendRegistry registry, string storeRoot, SubmissionRecord submission, LocalIntakeOptions settings, CancellationToken stopping)
    {
        using var scope = _log.BeginScope(new Dictionary<string, object> { ["BatchJob"] = submission.Key });
        var parsed = BatchJobParser.Parse(submission.Document);
        if (!parsed.IsValid)
        {
            // Recorded documents are canonical and parsed before: this is a store written by something else.
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, "InvalidSpec: " + string.Join("; ", parsed.Errors));
            return;
        }

        var job = parsed.Job!;
        if (!registry.TryResolve(job.Spec.Backend, out var backend, out var unavailable))
        {
            // Recorded when the backend was there (the controller restarted with other settings).
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, "BackendUnavailable: " + unavailable);
            return;
        }

        if (submission.Starts >= settings.MaxStarts)
        {
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed,
                $"RunnerError: started {submission.Starts} times without finishing; last: {submission.Reason}");
            return;
        }

        var runId = RunIdentity.For(job);
        store.MarkStarted(submission.Namespace, submission.Name, runId);
        _log.LogInformation("{Action} BatchJob {Namespace}/{Name} run {RunId} on {Backend}",
            submission.State == SubmissionState.Running ? "Resuming" : "Starting", submission.Namespace, submission.Name, runId, backend.Backend.Name);
        try
        {
            var run = new BackendRun(job, job.Metadata.Namespace, job.Metadata.Name, runId, 0, runId, IndexSelection.All, null, AllowSubmit: true);
            var outcome = await BackendDriver.FollowAsync(
                backend, run, BackendStateFile.For(storeRoot, run, backend.Backend.Name), null, time, logs.CreateLogger(nameof(BackendDriver)), stopping).ConfigureAwait(false);
            var last = outcome.Progress;
            if (outcome.StoppedFollowing || last.Phase == RunPhase.Cancelled && stopping.IsCancellationRequested)
            {
                // Our own shutdown, not `batchrunner cancel`: it stays Running, to be resumed (or followed again).
                return;
            }

            if (outcome.Refused)
            {
                store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, $"{last.Reason}: {last.Message}");
                _log.LogWarning("BatchJob {Namespace}/{Name} was refused by {Backend}: {Message}", submission.Namespace, submission.Name, backend.Backend.Name, last.Message);
                return;
            }

            var state = last.Phase switch
            {
                RunPhase.Succeeded => SubmissionState.Succeeded,
                RunPhase.Cancelled => SubmissionState.Cancelled,
                _ => SubmissionState.Failed,
            };
            store.MarkFinished(submission.Namespace, submission.Name, state, last.FailureMessage);
            _log.LogInformation("BatchJob {Namespace}/{Name} run {RunId} {Phase}: {Succeeded} of {Total} indexes succeeded",
                submission.Namespace, submission.Name, runId, last.Phase.ToString(), last.Succeeded, last.Total);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Resumed at the next start.
        }
        catch (InvalidSpecException e)
        {
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, "InvalidSpec: " + string.Join("; ", e.Errors));
            _log.LogWarning("BatchJob {Namespace}/{Name} cannot run: {Errors}", submission.Namespace, submission.Name, string.Join("; ", e.Errors));
        }
        catch (Exception e)
        {
            // RunBusyException (the same run in another process) or the runner's own trouble: try again later.
            store.Defer(submission.Namespace, submission.Name, time.GetUtcNow().AddSeconds(settings.RetryDelaySeconds), e.Message);
            _log.LogWarning("BatchJob {Namespace}/{Name} did not run ({Error}); trying again in {Delay}s",
                submission.Namespace, submission.Name, e.Message, settings.RetryDelaySeconds);
        }
    }
}
