using System.Globalization;
using BatchRunner.Aws.Batch;
using BatchRunner.Aws.S3;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Core.Sweeps;
using BatchRunner.Store;
using Serilog;

namespace BatchRunner.Exec;

/// <summary>
/// One attempt of one index, wrapped: resolve the index and its parameters from the spec exactly as
/// <see cref="SweepPlan"/> does, run the command with the <c>BATCHRUNNER_*</c> environment, then upload what it
/// wrote to its own attempt folder and, last, the attempt's ledger row (so a ledger row means its files are all
/// there). The exit code is the command's, unless the upload failed after it succeeded: then 74, so the backend
/// retries rather than counting lost results as a success.
/// </summary>
public sealed class ResultsWrapper(Func<string, string?> environment, ILogger log, TimeProvider time)
{
    private readonly StoreCalls _store = new(time);

    /// <summary>The wrapper itself could not run the command (bad arguments, spec or store), as <c>env</c> and <c>docker run</c> say it.</summary>
    public const int WrapperError = 125;

    public const int CommandNotFound = 127;

    /// <summary>EX_IOERR: the command succeeded but its results could not be stored.</summary>
    public const int UploadFailed = 74;

    public async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken cancellation)
    {
        if (args is ["--install", var destination])
        {
            return Install(destination);
        }

        ExecArguments arguments;
        BatchJob job;
        IResultsStore store;
        int index, attempt;
        try
        {
            arguments = ExecArguments.Parse(args, environment);
            var options = Options(arguments);
            store = ResultsStores.Open(arguments.Store, options, path => new LocalResultsStore(path));
            job = await _store.RunAsync(token => new ValueTask<BatchJob>(LoadSpecAsync(arguments.Spec, options, token)), cancellation).ConfigureAwait(false);
            var plan = new SweepPlan(job.Spec);
            index = IndexSource.Resolve(environment, plan.Count);
            var runId = RunIdentity.For(job);
            attempt = IndexSource.BatchAttempt(environment)
                ?? await _store.RunAsync(token => new ValueTask<int>(NextAttemptAsync(store, job.Metadata.Name, runId, index, token)), cancellation).ConfigureAwait(false);
            return await RunAttemptAsync(arguments, job, runId, plan.For(index), attempt, store, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FormatException or InvalidSpecException || StoreCalls.IsStoreFailure(e))
        {
            log.Error("batchrunner-exec: {Error}", e.Message);
            if (e is FormatException)
            {
                log.Error("{Usage}", ExecArguments.Usage);
            }

            return WrapperError;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A failure nobody foresaw (a library's bug among them): said in full and this exit code, so the backend
            // retries the attempt, rather than the runtime's abort (134) and a core dump in the attempt's folder.
            log.Error(e, "batchrunner-exec: unexpected failure: {Error}", e.Message);
            return WrapperError;
        }
    }

    /// <summary>
    /// Copies this executable to <paramref name="destination"/>, executable by all: how an init container puts the
    /// wrapper into a shared volume from an image without a shell or <c>cp</c> (the controller's is chiseled).
    /// </summary>
    private int Install(string destination)
    {
        try
        {
            var self = Environment.ProcessPath ?? throw new IOException("the wrapper cannot tell where its executable is");
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
            File.Copy(self, destination, overwrite: true);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(destination, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                    | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            }

            log.Information("batchrunner-exec: installed at {Destination}", destination);
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Error("batchrunner-exec: could not install at {Destination}: {Error}", destination, e.Message);
            return WrapperError;
        }
    }

    private ResultsOptions Options(ExecArguments arguments)
    {
        var fromEnvironment = ResultsOptions.FromEnvironment(environment);
        return new ResultsOptions
        {
            Uri = arguments.Store,
            Region = arguments.Region ?? fromEnvironment.Region,
            EndpointUrl = arguments.EndpointUrl ?? fromEnvironment.EndpointUrl,
            ForcePathStyle = arguments.ForcePathStyle ?? fromEnvironment.ForcePathStyle,
            PartSizeBytes = Math.Max(arguments.PartSizeBytes ?? fromEnvironment.PartSizeBytes, ResultsOptions.MinPartSizeBytes),
        };
    }

    private static async Task<BatchJob> LoadSpecAsync(string spec, ResultsOptions options, CancellationToken cancellation)
    {
        string text;
        if (spec.StartsWith("s3://", StringComparison.OrdinalIgnoreCase))
        {
            var (bucket, key) = StoreUri.ParseObject(spec);
            using var s3 = S3ResultsStore.Create(options, new StoreUri(bucket, "", null));
            var bytes = await s3.GetBytesAsync(key, cancellation).ConfigureAwait(false) ?? throw new IOException($"{spec}: no such object");
            text = System.Text.Encoding.UTF8.GetString(bytes);
        }
        else
        {
            text = await File.ReadAllTextAsync(spec, cancellation).ConfigureAwait(false);
        }

        return StoredSpec.Parse(text);
    }

    /// <summary>One more than the highest attempt already stored for the index (1 for the first).</summary>
    public static async Task<int> NextAttemptAsync(IResultsStore store, string batchJob, string runId, int index, CancellationToken cancellation)
    {
        var highest = 0;
        await foreach (var item in store.ListAsync(StoreLayout.IndexPrefix(batchJob, runId, index) + "/", cancellation).ConfigureAwait(false))
        {
            highest = Math.Max(highest, StoreLayout.AttemptOf(item.Key) ?? 0);
        }

        return highest + 1;
    }

    private async Task<int> RunAttemptAsync(
        ExecArguments arguments, BatchJob job, string runId, IndexAssignment assignment, int attempt, IResultsStore store, CancellationToken cancellation)
    {
        var name = job.Metadata.Name;
        var scratch = Directory.CreateTempSubdirectory("batchrunner-exec-");
        try
        {
            var outputDir = environment(WorkloadEnvironment.OutputDir) is { Length: > 0 } given ? given : Path.Combine(scratch.FullName, "output");
            Directory.CreateDirectory(outputDir);
            var logPath = Path.Combine(scratch.FullName, "stdout.txt");
            log.Information(
                "batchrunner-exec: {BatchJob} run {RunId} index {Index} attempt {Attempt} → {Store}", name, runId, assignment.Index, attempt, store.Location);

            // An earlier identical point's result, when the store has one as it was: fetched instead of running.
            var key = PointKey.For(job, assignment, program: null);
            var (reusedFrom, notReused) = await _store.RunAsync(
                token => new ValueTask<(string?, string?)>(FetchEarlierAsync(store, job, runId, key, attempt, outputDir, logPath, token)), cancellation).ConfigureAwait(false);
            var startedAt = time.GetUtcNow();
            var child = reusedFrom is null
                ? await ChildProcess.RunAsync(arguments.Command, WorkloadEnvironment.For(job, runId, assignment, outputDir), logPath).ConfigureAwait(false)
                : new ChildResult(0, null, false, "");
            var finishedAt = time.GetUtcNow();
            var (outcome, reason) = child switch
            {
                { StartError: { } error } => (AttemptOutcome.FailedToStart, error),
                { Terminated: true } => (AttemptOutcome.Interrupted, $"interrupted: stopped by a signal passed on by batchrunner-exec ({ExitDescription.Describe(child.ExitCode ?? -1, child.StderrTail)})"),
                { ExitCode: 0 } => (AttemptOutcome.Succeeded, (string?)null),
                _ => (AttemptOutcome.Failed, ExitDescription.Describe(child.ExitCode ?? -1, child.StderrTail)),
            };

            var summary = LocalResultsStore.InspectOutput(outputDir, job.Spec.Results.Format);
            var digest = outcome == AttemptOutcome.Succeeded && reusedFrom is null ? OutputFolder.Digest(outputDir) : null;
            var row = summary.ApplyTo(WithBilling(job, LedgerRow.For(job, runId, assignment, attempt, outcome, startedAt, finishedAt, BackendOf(job))) with
            {
                ExitCode = child.ExitCode,
                Reason = notReused is null ? reason : reason is null ? notReused : $"{reason}; {notReused}",
                PointKey = key.Hash,
                ReusedFrom = reusedFrom,
            });

            var uploadError = await UploadAsync(store, name, runId, assignment.Index, attempt, outputDir, logPath, cancellation).ConfigureAwait(false);
            if (uploadError is not null)
            {
                row = row with
                {
                    Status = outcome == AttemptOutcome.Succeeded ? AttemptOutcome.Failed.ToLedger() : row.Status,
                    Reason = outcome == AttemptOutcome.Succeeded ? $"upload failed: {uploadError}" : row.Reason,
                    OutputNote = $"upload failed: {uploadError}" + (row.OutputNote is null ? "" : $"; {row.OutputNote}"),
                };
            }

            try
            {
                await _store.RunAsync(token => new ValueTask(store.PutBytesAsync(StoreLayout.LedgerKey(name, runId, assignment.Index, attempt), row.ToJsonUtf8(), token)), cancellation)
                    .ConfigureAwait(false);
                if (uploadError is null && digest is not null)
                {
                    // Last: a point others may reuse is one whose files and ledger row are all there.
                    await _store.RunAsync(token => new ValueTask(store.PutBytesAsync(StoreLayout.PointKey(job.Metadata.Namespace, key.Hash),
                        new StoredPoint(StoreLayout.AttemptPrefix(name, runId, assignment.Index, attempt), digest, key.FieldsText).ToJsonUtf8(), token)), cancellation).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (StoreCalls.IsStoreFailure(e))
            {
                // The attempt's row could not be kept: not a success the backend may count; it tries the index again.
                log.Error("batchrunner-exec: recording index {Index} attempt {Attempt} failed: {Error}", assignment.Index, attempt, e.Message);
                return UploadFailed;
            }

            log.Information(
                "batchrunner-exec: index {Index} attempt {Attempt} {Status}: {Files} files, {Bytes} bytes, {Rows} rows{Note}",
                assignment.Index, attempt, row.Status, summary.Files, summary.Bytes, summary.Rows, row.OutputNote is null ? "" : $" ({row.OutputNote})");

            return uploadError is not null && outcome == AttemptOutcome.Succeeded ? UploadFailed
                : child.StartError is not null ? CommandNotFound
                : child.ExitCode ?? WrapperError;
        }
        finally
        {
            try
            {
                scratch.Delete(recursive: true);
            }
            catch (IOException)
            {
                // A scratch folder left in a container that is about to end costs nothing.
            }
        }
    }

    /// <summary>
    /// The earlier result of the same point in this store (its namespace's), fetched into the attempt's output folder
    /// and log when its files are as they were recorded: where it came from, or null with why not (null, null: none
    /// to take). Not for a retry or a rerun (the index is being run again on purpose), nor within one run.
    /// </summary>
    private async Task<(string? Source, string? Refused)> FetchEarlierAsync(
        IResultsStore store, BatchJob job, string runId, PointKey key, int attempt, string outputDir, string logPath, CancellationToken cancellation)
    {
        if (!job.Spec.ReusesResults || attempt > 1 || environment(WorkloadEnvironment.AttemptNumbering) == "store"
            || await store.GetBytesAsync(StoreLayout.PointKey(job.Metadata.Namespace, key.Hash), cancellation).ConfigureAwait(false) is not { } bytes
            || StoredPoint.FromJson(bytes) is not { } point
            || point.Source.StartsWith(StoreLayout.RunPrefix(job.Metadata.Name, runId) + "/", StringComparison.Ordinal))
        {
            return (null, null);
        }

        var refused = $"the earlier result of this point at {point.Source} was deleted or changed since it was recorded, so the index ran";
        var prefix = $"{point.Source}/{StoreLayout.OutputFolder}/";
        var root = Path.GetFullPath(outputDir) + Path.DirectorySeparatorChar;
        await foreach (var item in store.ListAsync(prefix, cancellation).ConfigureAwait(false))
        {
            // A key is the store's; a name that would leave the output folder is no output of it.
            var target = Path.GetFullPath(Path.Combine(outputDir, item.Key[prefix.Length..]));
            if (!target.StartsWith(root, StringComparison.Ordinal))
            {
                return (null, refused);
            }

            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            await store.DownloadAsync(item.Key, target, cancellation).ConfigureAwait(false);
        }

        if (OutputFolder.Digest(outputDir) != point.Digest || await store.GetBytesAsync($"{point.Source}/{StoreLayout.LedgerFile}", cancellation).ConfigureAwait(false) is null)
        {
            // Not as it was: nothing of it stays for the command to find.
            Directory.Delete(outputDir, recursive: true);
            Directory.CreateDirectory(outputDir);
            return (null, refused);
        }

        if (await store.GetBytesAsync($"{point.Source}/{StoreLayout.LogsFolder}/stdout.txt", cancellation).ConfigureAwait(false) is { } earlierLog)
        {
            await File.WriteAllBytesAsync(logPath, earlierLog, cancellation).ConfigureAwait(false);
        }

        log.Information("batchrunner-exec: {BatchJob} index took the result of {Source} (the same point); the command did not run", job.Metadata.Name, point.Source);
        return (point.Source, null);
    }

    /// <summary>Uploads every output file and the log; returns the first failure (the others still go up), or null.</summary>
    private async Task<string?> UploadAsync(
        IResultsStore store, string name, string runId, int index, int attempt, string outputDir, string logPath, CancellationToken cancellation)
    {
        string? firstError = null;
        var uploads = new List<(string Key, string Path)>();
        // Regular files only, never through a link (the inspection removed links and special files).
        foreach (var file in BatchRunner.Store.OutputFolder.Scan(outputDir).Files)
        {
            uploads.Add(($"{StoreLayout.OutputPrefix(name, runId, index, attempt)}/{file.Name}", file.Path));
        }

        if (File.Exists(logPath) && new FileInfo(logPath).Length > 0)
        {
            uploads.Add(($"{StoreLayout.AttemptPrefix(name, runId, index, attempt)}/{StoreLayout.LogsFolder}/stdout.txt", logPath));
        }

        foreach (var (key, path) in uploads)
        {
            try
            {
                await _store.RunAsync(token => new ValueTask(store.PutFileAsync(key, path, token)), cancellation).ConfigureAwait(false);
            }
            catch (Exception e) when (StoreCalls.IsStoreFailure(e))
            {
                log.Error("batchrunner-exec: uploading {Key} failed: {Error}", key, e.Message);
                firstError ??= string.Create(CultureInfo.InvariantCulture, $"{key}: {e.Message}");
            }
        }

        return firstError;
    }

    /// <summary>On AWS Batch (Fargate), what the attempt is billed: its task size per second, a minute at least, on-demand or Spot.</summary>
    private static LedgerRow WithBilling(BatchJob job, LedgerRow row) =>
        row.Backend == Backend.AwsBatch.Name && FargateBilling.Billed(job.Spec.Resources.MilliCpu, job.Spec.Resources.MemoryBytes, row.DurationSeconds) is { } billed
            ? row with
            {
                BilledVcpuSeconds = Math.Round(billed.VcpuSeconds, 3),
                BilledGibSeconds = Math.Round(billed.GibSeconds, 3),
                Capacity = FargateBilling.CapacityOf(AwsBatchDispatcher.AsksForSpot(job)),
            }
            : row;

    /// <summary>
    /// The backend the attempt runs on, as its backend says in the environment (a run split across backends by its
    /// queue names one in its spec), else the spec's; a name that is no backend is not trusted.
    /// </summary>
    private string BackendOf(BatchJob job) =>
        environment(WorkloadEnvironment.Backend) is { Length: > 0 } named && Backend.TryParse(named, out var backend) ? backend.Name : job.Spec.Backend.Name;

    }
