using System.CommandLine;
using System.Globalization;
using System.Text;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Query;
using BatchRunner.Store;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner logs NAME --index I</c>: what an attempt of an index wrote to standard output (or error), from the
/// local store or a store the cluster backends wrote (S3 or a folder); <c>--follow</c> goes on printing while a local
/// attempt runs. The latest attempt unless one is named.
/// </summary>
internal static class LogsCommand
{
    /// <summary>How often a followed log is looked at again.</summary>
    private static readonly TimeSpan FollowInterval = TimeSpan.FromMilliseconds(250);

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("name") { Description = "BatchJob name" };
        var index = new Option<int>("--index", "-i") { Description = "The index whose log to show", Required = true };
        var attempt = new Option<int?>("--attempt", "-a") { Description = "The attempt (default: the index's latest)" };
        var errors = new Option<bool>("--stderr") { Description = "Standard error instead of standard output (the local backend keeps them apart)" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Go on printing while the attempt runs (local store)" };
        var ns = new Option<string>("--namespace", "-n") { Description = "The BatchJob's namespace", DefaultValueFactory = _ => "default" };
        var runOption = new Option<string?>("--run") { Description = "The run (default: the BatchJob's latest in the store)" };
        var results = new Option<string?>("--results") { Description = "A store the cluster backends wrote: s3://bucket/prefix or a folder (S3 settings from BatchRunner__Results__*)" };
        var cluster = new Option<bool>("--cluster") { Description = "From the pod that runs (or ran) the index, in the cluster kubectl points at, while it is there; --follow streams it" };
        var command = new Command("logs", "Print what an index's attempt wrote to standard output or error") { name, index, attempt, errors, follow, ns, runOption, results, cluster };
        command.SetAction(async (parsed, cancellation) =>
        {
            var request = new Request(parsed.GetRequiredValue(name), parsed.GetRequiredValue(ns), parsed.GetValue(runOption), parsed.GetValue(index), parsed.GetValue(attempt),
                parsed.GetValue(errors));
            if (!await BatchJobName.CheckAsync("logs", request.Name, stderr).ConfigureAwait(false))
            {
                return ExitCodes.InvalidInput;
            }

            if (request.Index < 0 || request.Attempt is < 1)
            {
                await stderr.WriteLineAsync(request.Index < 0 ? "logs: --index: an index is 0 or more" : "logs: --attempt: attempts are numbered from 1").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            if (parsed.GetValue(cluster))
            {
                return await FromClusterAsync(request, parsed.GetValue(follow), stdout, stderr, cancellation).ConfigureAwait(false);
            }

            var local = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            IResultsStore store;
            string? runId;
            try
            {
                (store, runId, var error) = parsed.GetValue(results) is { } location
                    ? await InStoreAsync(location, request, cancellation).ConfigureAwait(false)
                    : InLocalStore(local, request);
                if (runId is null)
                {
                    (store as IDisposable)?.Dispose();
                    await stderr.WriteLineAsync($"logs: {error}").ConfigureAwait(false);
                    return ExitCodes.InvalidInput;
                }
            }
            catch (FormatException e)
            {
                await stderr.WriteLineAsync($"logs: --results: {e.Message}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            var followHere = parsed.GetValue(follow) && store.LocalRoot == local;
            if (parsed.GetValue(follow) && !followHere)
            {
                // The results wrapper uploads an attempt's log when the attempt ends: there is nothing to follow before.
                await stderr.WriteLineAsync("logs: --follow follows attempts of the local store; a store the cluster backends wrote gets a log when its attempt ends, so what is there is printed").ConfigureAwait(false);
            }

            try
            {
                return await PrintAsync(store, request, runId, followHere ? local : null, stdout, stderr, cancellation).ConfigureAwait(false);
            }
            finally
            {
                (store as IDisposable)?.Dispose();
            }
        });
        return command;
    }

    private sealed record Request(string Name, string Namespace, string? Run, int Index, int? Attempt, bool Stderr);

    /// <summary>
    /// The log of the pod that runs (or ran) the index, through the API server (kubectl logs; --follow streams it while
    /// the pod runs). Its attempts are the index's pods still in the cluster, oldest first; once its Job is removed
    /// (after its TTL) the log is what the results wrapper uploaded (--results).
    /// </summary>
    private static async Task<int> FromClusterAsync(Request request, bool follow, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        var listed = await Kubectl.JsonAsync(
            ["get", "pods", "-n", request.Namespace, "-l", $"{WorkloadLabels.BatchJob}={request.Name}", "-o", "json"], stderr, cancellation).ConfigureAwait(false);
        if (listed is null)
        {
            return ExitCodes.InvalidInput;
        }

        var pods = ClusterPods.OfIndex(listed, request.Index);
        var what = string.Create(CultureInfo.InvariantCulture, $"{request.Name} index {request.Index} in namespace {request.Namespace}");
        if (pods.Count == 0)
        {
            await stderr.WriteLineAsync($"logs: no pod of {what} in the cluster: it has not started, or its Job was removed after it finished (what the results wrapper uploaded: --results s3://bucket/prefix)").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        if (request.Attempt is { } wanted && wanted > pods.Count)
        {
            await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"logs: --attempt {wanted}: {what} has {pods.Count} pod(s) in the cluster, its attempts 1 to {pods.Count} here")).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var pod = pods[(request.Attempt ?? pods.Count) - 1];
        if (request.Stderr)
        {
            await stderr.WriteLineAsync("logs: a pod's log holds its standard output and error together; printing it whole").ConfigureAwait(false);
        }

        var output = new LogOutput(stdout);
        var ran = await Kubectl.StreamAsync(["logs", "-n", request.Namespace, pod.Name, "-c", pod.Container, .. follow ? new[] { "--follow" } : []],
            async bytes => { await output.WriteAsync(bytes).ConfigureAwait(false); await output.FlushAsync().ConfigureAwait(false); }, stderr, cancellation).ConfigureAwait(false);
        return ran ? ExitCodes.Succeeded : ExitCodes.InvalidInput;
    }

    /// <summary>The local store: the run from its state (the latest of the BatchJob unless named).</summary>
    private static (IResultsStore, string?, string?) InLocalStore(string root, Request request)
    {
        var (job, runId, error) = RerunCommand.FindRun(root, request.Namespace, request.Name, request.Run);
        if (job is not null && request.Index >= job.Spec.Completions)
        {
            (runId, error) = (null, string.Create(CultureInfo.InvariantCulture,
                $"--index: index {request.Index} is outside the run: it has {job.Spec.Completions} indexes (0 to {job.Spec.Completions - 1})"));
        }

        return (new LocalResultsStore(root), runId, error);
    }

    private static async Task<(IResultsStore, string?, string?)> InStoreAsync(string location, Request request, CancellationToken cancellation)
    {
        var store = StoreLocation.OpenResults(location);
        var (runId, error) = await FindRunAsync(store, request.Name, request.Run, cancellation).ConfigureAwait(false);
        return (store, runId, error);
    }

    /// <summary>In a store the results wrapper wrote: the run named, or the BatchJob's only one there (else why not).</summary>
    internal static async Task<(string? RunId, string? Error)> FindRunAsync(IResultsStore store, string name, string? run, CancellationToken cancellation)
    {
        var runs = (await ResultsCompactor.FindRunsAsync(store, name, cancellation).ConfigureAwait(false)).Select(r => r.RunId).Where(r => run is null || r == run).ToList();
        return runs.Count == 1 ? (runs[0], null)
            : (null, runs.Count == 0 ? $"no run of {name}{(run is null ? "" : $" {run}")} in {store.Location}"
                : $"{name} has {runs.Count} runs in {store.Location} ({string.Join(", ", runs)}): name one with --run");
    }

    private static async Task<int> PrintAsync(IResultsStore store, Request request, string runId, string? followIn, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        // The attempts of the index that left anything in the store (a ledger row, outputs or logs).
        var attempts = new SortedSet<int>();
        await foreach (var item in store.ListAsync(StoreLayout.IndexPrefix(request.Name, runId, request.Index) + "/", cancellation).ConfigureAwait(false))
        {
            if (StoreLayout.AttemptOf(item.Key) is { } found)
            {
                attempts.Add(found);
            }
        }

        var what = string.Create(CultureInfo.InvariantCulture, $"{request.Name} run {runId} index {request.Index}");
        if (attempts.Count == 0)
        {
            await stderr.WriteLineAsync($"logs: {what} has not run: no attempt of it in {store.Location}").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var attempt = request.Attempt ?? attempts.Max;
        if (!attempts.Contains(attempt))
        {
            await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"logs: {what} has no attempt {attempt} (attempts: {string.Join(", ", attempts)})")).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var file = request.Stderr ? ProcessLauncher.StderrFile : ProcessLauncher.StdoutFile;
        var key = $"{StoreLayout.AttemptPrefix(request.Name, runId, request.Index, attempt)}/{StoreLayout.LogsFolder}/{file}";
        var ledger = StoreLayout.LedgerKey(request.Name, runId, request.Index, attempt);
        var printed = 0L;
        var output = new LogOutput(stdout);
        while (true)
        {
            // Read from where the last look stopped, so a followed log prints each byte once.
            printed = await CopyFromAsync(store, key, printed, output, cancellation).ConfigureAwait(false);
            await output.FlushAsync().ConfigureAwait(false);

            // Followed until the attempt's ledger row says it ended, or nothing runs it any more.
            if (followIn is null || await store.GetBytesAsync(ledger, cancellation).ConfigureAwait(false) is not null || !LocalExecutor.HasLiveRunner(followIn, runId))
            {
                break;
            }

            await Task.Delay(FollowInterval, cancellation).ConfigureAwait(false);
        }

        if (printed == 0)
        {
            var kept = request.Stderr && store.LocalRoot is null
                ? "; the results wrapper keeps standard error with standard output (leave out --stderr)"
                : "";
            await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"logs: {what} attempt {attempt} wrote nothing to standard {(request.Stderr ? "error" : "output")} (an empty log is not kept){kept}")).ConfigureAwait(false);
        }

        return ExitCodes.Succeeded;
    }

    /// <summary>
    /// Streams the object from <paramref name="offset"/> on (a log may be large): read in place from a local store (its
    /// writer may still be appending), downloaded from S3. Returns where it stopped; a log not there yet copies nothing.
    /// </summary>
    private static async Task<long> CopyFromAsync(IResultsStore store, string key, long offset, LogOutput output, CancellationToken cancellation)
    {
        var path = store.LocalRoot is { } root ? Path.Combine(root, key) : null;
        string? downloaded = null;
        try
        {
            if (path is null)
            {
                await foreach (var item in store.ListAsync(key, cancellation).ConfigureAwait(false))
                {
                    if (item.Key == key)
                    {
                        downloaded = Path.Combine(Path.GetTempPath(), $"batchrunner-log-{Guid.NewGuid():N}");
                        await store.DownloadAsync(key, downloaded, cancellation).ConfigureAwait(false);
                    }
                }

                path = downloaded;
            }

            if (path is null || !File.Exists(path))
            {
                return offset;
            }

            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, useAsync: true);
            file.Seek(offset, SeekOrigin.Begin);
            var buffer = new byte[1 << 16];
            int read;
            while ((read = await file.ReadAsync(buffer, cancellation).ConfigureAwait(false)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read)).ConfigureAwait(false);
                offset += read;
            }

            return offset;
        }
        finally
        {
            if (downloaded is not null)
            {
                File.Delete(downloaded);
            }
        }
    }

    /// <summary>
    /// A log is the workload's, so it may hold anything: on a terminal, control characters are shown escaped (no escape
    /// sequence reaches it); redirected, the text goes out as it is. UTF-8 split across reads is decoded whole.
    /// </summary>
    private sealed class LogOutput(TextWriter stdout)
    {
        private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
        private readonly bool _terminal = ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected;

        public async Task WriteAsync(ReadOnlyMemory<byte> bytes)
        {
            var chars = new char[_decoder.GetCharCount(bytes.Span, flush: false)];
            var count = _decoder.GetChars(bytes.Span, chars, flush: false);
            var text = new string(chars, 0, count);
            await stdout.WriteAsync(_terminal ? TerminalText.Safe(text) : text).ConfigureAwait(false);
        }

        public Task FlushAsync() => stdout.FlushAsync();
    }
}
