using System.Collections.Concurrent;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Intake;
using Microsoft.Extensions.Options;
using Serilog.Context;

namespace BatchRunner.Controller.Intake;

/// <summary>
/// Runs the submissions the local intake recorded with the local backend, at most
/// <see cref="LocalIntakeOptions.MaxConcurrentJobs"/> at once, oldest first. A submission being run when the
/// controller stopped (or died) stays Running in the store and is resumed at the next start: the executor finds
/// its run by its id, kills what the dead runner left, and reruns only the indexes that had not succeeded.
/// On when the controller runs without Kubernetes.
/// </summary>
public sealed class LocalSubmissionRunner(
    IServiceProvider services,
    IOptions<KubernetesOptions> kubernetes,
    IOptions<LocalIntakeOptions> options,
    TimeProvider time) : BackgroundService
{
    private readonly Serilog.ILogger _log = Serilog.Log.ForContext<LocalSubmissionRunner>();
    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (kubernetes.Value.Enabled)
        {
            return;
        }

        var settings = options.Value;
        var store = services.GetRequiredService<SubmissionStore>();
        var executor = new LocalExecutor(
            new LocalRunOptions { StoreRoot = settings.ResolveStoreRoot(), WorkingDirectory = settings.ResolveWorkingDirectory() }, time, _log);
        _log.Information("Running local submissions from {Store}, {MaxJobs} BatchJob(s) at once", store.Path, settings.MaxConcurrentJobs);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var free = settings.MaxConcurrentJobs - _running.Count;
                if (free > 0)
                {
                    foreach (var submission in store.Runnable(free, [.. _running.Keys]))
                    {
                        var task = Task.Run(() => RunAsync(store, executor, submission, settings, stoppingToken), CancellationToken.None);
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

    private async Task RunAsync(SubmissionStore store, LocalExecutor executor, SubmissionRecord submission, LocalIntakeOptions settings, CancellationToken stopping)
    {
        using var scope = LogContext.PushProperty("BatchJob", submission.Key);
        var parsed = BatchJobParser.Parse(submission.Document);
        if (!parsed.IsValid)
        {
            // Recorded documents are canonical and parsed before: this is a store written by something else.
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, "InvalidSpec: " + string.Join("; ", parsed.Errors));
            return;
        }

        var job = parsed.Job!;
        if (submission.Starts >= settings.MaxStarts)
        {
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed,
                $"RunnerError: started {submission.Starts} times without finishing; last: {submission.Reason}");
            return;
        }

        var runId = RunIdentity.For(job);
        store.MarkStarted(submission.Namespace, submission.Name, runId);
        _log.Information("{Action} BatchJob {Namespace}/{Name} run {RunId}",
            submission.State == SubmissionState.Running ? "Resuming" : "Starting", submission.Namespace, submission.Name, runId);
        try
        {
            var report = await executor.RunAsync(job, null, stopping).ConfigureAwait(false);
            if (report.Phase == RunPhase.Cancelled && stopping.IsCancellationRequested)
            {
                // Our own shutdown, not `batchrunner cancel`: it stays Running, to be resumed.
                return;
            }

            var state = report.Phase switch
            {
                RunPhase.Succeeded => SubmissionState.Succeeded,
                RunPhase.Cancelled => SubmissionState.Cancelled,
                _ => SubmissionState.Failed,
            };
            store.MarkFinished(submission.Namespace, submission.Name, state, report.Reason);
            _log.Information("BatchJob {Namespace}/{Name} run {RunId} {Phase}: {Succeeded} of {Total} indexes succeeded",
                submission.Namespace, submission.Name, runId, report.Phase.ToString(), report.Succeeded, report.Total);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Resumed at the next start.
        }
        catch (InvalidSpecException e)
        {
            store.MarkFinished(submission.Namespace, submission.Name, SubmissionState.Failed, "InvalidSpec: " + string.Join("; ", e.Errors));
            _log.Warning("BatchJob {Namespace}/{Name} cannot run: {Errors}", submission.Namespace, submission.Name, string.Join("; ", e.Errors));
        }
        catch (Exception e)
        {
            // RunBusyException (the same run in another process) or the runner's own trouble: try again later.
            store.Defer(submission.Namespace, submission.Name, time.GetUtcNow().AddSeconds(settings.RetryDelaySeconds), e.Message);
            _log.Warning("BatchJob {Namespace}/{Name} did not run ({Error}); trying again in {Delay}s",
                submission.Namespace, submission.Name, e.Message, settings.RetryDelaySeconds);
        }
    }
}
