using System.Globalization;
using System.Text.Json;
using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Protocol;
using BatchRunner.Aws.S3;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Store;
using Serilog;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner run</c> of a BatchJob with <c>spec.backend: aws-batch</c>: submits it to AWS Batch and follows it to
/// the end with the same progress display as a local run. Settings come from the environment as the controller's
/// (<c>BatchRunner__AwsBatch__JobQueue</c>, <c>…__ExecutionRoleArn</c>, <c>BatchRunner__Results__Uri</c>, …);
/// credentials and region from the AWS SDK's chain. The run's state is kept under the local store
/// (<c>aws-batch/NAMESPACE/NAME/RUNID.json</c>), so running the same spec again follows the same run and submits
/// nothing twice (and array names are deterministic besides). Ctrl-C stops following, not the run: what was
/// submitted goes on in AWS Batch, and running the spec again picks it up.
/// </summary>
internal static class AwsBatchRun
{
    public static async Task<int> RunAsync(
        BatchJob job,
        string store,
        TextWriter stdout,
        TextWriter stderr,
        Func<string, string?> environment,
        CancellationToken cancellation,
        IBatchApi? api = null,
        IRunSpecPublisher? publisher = null,
        AwsBatchTimings? timings = null)
    {
        AwsBatchOptions options;
        try
        {
            options = AwsBatchOptions.FromEnvironment(environment);
        }
        catch (FormatException e)
        {
            await stderr.WriteLineAsync(e.Message).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        if (options.Missing() is { Count: > 0 } missing)
        {
            await stderr.WriteLineAsync(
                $"spec.backend: aws-batch needs {string.Join(" and ", missing.Select(m => m.Replace("BatchRunner:AwsBatch:", "BatchRunner__AwsBatch__", StringComparison.Ordinal)))} in the environment").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var runId = RunIdentity.For(job);
        var statePath = Path.Combine(store, "aws-batch", job.Metadata.Namespace, job.Metadata.Name, runId + ".json");
        var state = await LoadAsync(statePath, cancellation).ConfigureAwait(false);
        using var owned = api is null
            ? new BatchApiClient(new AwsJsonClient(BatchApiClient.ServiceOptions(options.Region, options.EndpointUrl), AwsJsonClient.CamelCaseJson(), log: Log.Logger))
            : null;
        using var limiter = new SubmitRateLimiter(options.SubmitJobsPerSecond);
        var dispatcher = new AwsBatchDispatcher(api ?? owned!, options, publisher ?? new StoreRunSpecPublisher(ResultsOptions.FromEnvironment(environment), path => new LocalResultsStore(path)), limiter, TimeProvider.System, Log.Logger, timings ?? options.Timings());
        Log.Information("Running {BatchJob} run {RunId} on AWS Batch: {Settings}", job.Metadata.Name, runId, options.ToString());

        var started = TimeProvider.System.GetUtcNow();
        var finishedAtStart = -1;
        var snapshot = new ProgressSnapshot(job.Spec.Completions, 0, 0, 0, 0, null);
        await using var display = new ProgressDisplay(stderr, job.Metadata.Name, TimeProvider.System);
        display.Start(() => Volatile.Read(ref snapshot));
        AwsBatchProgress progress;
        while (true)
        {
            try
            {
                progress = await dispatcher.AdvanceAsync(job, runId, state, (kept, token) => SaveAsync(statePath, kept, token), allowSubmit: true, cancellation).ConfigureAwait(false);
                state = progress.State;
                await SaveAsync(statePath, state, cancellation).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                await display.DisposeAsync().ConfigureAwait(false);
                await stderr.WriteLineAsync(
                    $"Stopped following {job.Metadata.Name} run {runId}; what was submitted goes on in AWS Batch. Run the same spec again to follow it.").ConfigureAwait(false);
                return ExitCodes.Cancelled;
            }
            catch (AwsServiceException e) when (e.IsRetryable)
            {
                // Already retried with backoff by the client: AWS is having a bad minute. Keep following.
                Log.Warning("AWS Batch did not answer ({ErrorCode}: {Message}); trying again shortly", e.ErrorCode, e.ServiceMessage);
                if (!await DelayAsync(TimeSpan.FromSeconds(15), cancellation).ConfigureAwait(false))
                {
                    return ExitCodes.Cancelled;
                }

                continue;
            }

            var finished = progress.Succeeded + progress.Failed;
            finishedAtStart = finishedAtStart < 0 ? finished : finishedAtStart;
            var elapsed = TimeProvider.System.GetUtcNow() - started;
            TimeSpan? remaining = finished > finishedAtStart && progress.Total > finished
                ? elapsed / (finished - finishedAtStart) * (progress.Total - finished)
                : progress.Total == finished ? TimeSpan.Zero : null;
            Volatile.Write(ref snapshot, new ProgressSnapshot(progress.Total, progress.Succeeded, progress.Failed, progress.Running, 0, remaining));

            if (progress.Problem is { } problem && (problem.Fatal || progress.State.Arrays.Count == 0))
            {
                await display.DisposeAsync().ConfigureAwait(false);
                await stderr.WriteLineAsync($"{job.Metadata.Name}: {problem.Message}").ConfigureAwait(false);
                return problem.Reason is AwsBatchReasons.Rejected ? ExitCodes.JobFailed : ExitCodes.InvalidInput;
            }

            if (progress.Problem is { } passing)
            {
                // Submitted work goes on while something refuses the rest (a permission, a quota): say so and keep following.
                Log.Warning("{BatchJob}: {Message}", job.Metadata.Name, passing.Message);
            }

            if (progress.IsTerminal)
            {
                break;
            }

            if (!await DelayAsync(progress.PollAfter, cancellation).ConfigureAwait(false))
            {
                await display.DisposeAsync().ConfigureAwait(false);
                await stderr.WriteLineAsync(
                    $"Stopped following {job.Metadata.Name} run {runId}; what was submitted goes on in AWS Batch. Run the same spec again to follow it.").ConfigureAwait(false);
                return ExitCodes.Cancelled;
            }
        }

        await display.DisposeAsync().ConfigureAwait(false);
        await WriteSummaryAsync(job, runId, progress, store, options, TimeProvider.System.GetUtcNow() - (progress.State.StartTime ?? started), stdout).ConfigureAwait(false);
        return progress.Phase switch
        {
            RunPhase.Succeeded => ExitCodes.Succeeded,
            RunPhase.Cancelled => ExitCodes.Cancelled,
            _ => ExitCodes.JobFailed,
        };
    }

    private static async Task WriteSummaryAsync(BatchJob job, string runId, AwsBatchProgress progress, string store, AwsBatchOptions options, TimeSpan duration, TextWriter stdout)
    {
        var state = progress.State;
        await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"{job.Metadata.Name} run {runId}: {progress.Phase}, {progress.Succeeded} of {progress.Total} indexes succeeded, {progress.Failed} failed (AWS Batch queue {state.JobQueue}, {ProgressDisplay.FormatDuration(duration)})"))
            .ConfigureAwait(false);
        if (progress.Phase == RunPhase.Failed && progress.FailureMessage is { } reason && progress.Failures.Count == 0)
        {
            await stdout.WriteLineAsync($"  reason: {reason}").ConfigureAwait(false);
        }

        foreach (var failure in progress.Failures.Take(10))
        {
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"  index {failure.Index} failed: {failure.Reason}{(failure.ExitCode is { } code ? $" (exit code {code})" : "")}")).ConfigureAwait(false);
        }

        if (progress.Failed > 10)
        {
            await stdout.WriteLineAsync($"  failed indexes: {progress.FailedIndexes}").ConfigureAwait(false);
        }

        var results = !string.IsNullOrWhiteSpace(job.Spec.Results.Uri) ? job.Spec.Results.Uri : options.DefaultResultsUri;
        await stdout.WriteLineAsync($"  results: {results}/batchjob={job.Metadata.Name}/run={runId}/ (state kept in {store})").ConfigureAwait(false);
    }

    private static async Task<bool> DelayAsync(TimeSpan delay, CancellationToken cancellation)
    {
        try
        {
            await Task.Delay(delay, TimeProvider.System, cancellation).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task<AwsBatchRunState?> LoadAsync(string path, CancellationToken cancellation)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            await using var stream = File.OpenRead(path);
            return await JsonSerializer.DeserializeAsync(stream, AwsBatchRunState.TypeInfo, cancellation).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            // A damaged state file costs lookups (arrays are found again by name), never a second submission.
            Log.Warning("Ignoring the unreadable state {Path}: {Message}", path, e.Message);
            return null;
        }
    }

    /// <summary>Written whole or not at all (a temporary file renamed over the old one).</summary>
    private static async Task SaveAsync(string path, AwsBatchRunState state, CancellationToken cancellation)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        await File.WriteAllBytesAsync(temporary, JsonSerializer.SerializeToUtf8Bytes(state, AwsBatchRunState.TypeInfo), cancellation).ConfigureAwait(false);
        File.Move(temporary, path, overwrite: true);
    }
}
