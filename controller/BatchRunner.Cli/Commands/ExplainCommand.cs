using System.CommandLine;
using System.Globalization;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Core.Sweeps;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Query;
using BatchRunner.Local.State;
using BatchRunner.Store;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner explain NAME --index I</c>: where an index's result came from. A reused index names the earlier
/// attempt it took; one that ran says why no earlier result matched: the nearest earlier point of the namespace (the
/// most fields of its key equal) and the fields that differ, or why an identical one was not taken. Reads the local
/// backend's store, or with <c>--results</c> a store the cluster backends wrote (S3 or a folder).
/// </summary>
internal static class ExplainCommand
{
    /// <summary>What an explanation is made of, wherever it was read.</summary>
    /// <param name="Earlier">Points of the namespace this index could have taken (another run's), with their key fields.</param>
    internal sealed record Facts(
        BatchJob Job, string RunId, int Index, IReadOnlyList<LedgerRow> Rows, PointKey Key,
        IReadOnlyList<(string Source, IReadOnlyList<(string Field, string Hash)> Fields)> Earlier);

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("name") { Description = "BatchJob name" };
        var index = new Option<int>("--index", "-i") { Description = "The index to explain", Required = true };
        var ns = new Option<string>("--namespace", "-n") { Description = "The BatchJob's namespace", DefaultValueFactory = _ => "default" };
        var runOption = new Option<string?>("--run") { Description = "The run (default: the BatchJob's latest in the store)" };
        var results = new Option<string?>("--results") { Description = "A store the cluster backends wrote: s3://bucket/prefix or a folder (S3 settings from BatchRunner__Results__*)" };
        var spec = new Option<string?>("--spec") { Description = "With --results: the BatchJob file, for a run whose store keeps no spec (Kubernetes keeps it in the cluster)" };
        var command = new Command("explain", "Say where an index's result came from: reused from an earlier run, or why no earlier result matched") { name, index, ns, runOption, results, spec };
        command.SetAction(async (parsed, cancellation) =>
        {
            var (jobName, which, space) = (parsed.GetRequiredValue(name), parsed.GetValue(index), parsed.GetRequiredValue(ns));
            if (!await BatchJobName.CheckAsync("explain", jobName, stderr).ConfigureAwait(false))
            {
                return ExitCodes.InvalidInput;
            }

            Facts? facts;
            string? error;
            try
            {
                (facts, error) = parsed.GetValue(results) is { } location
                    ? await FromStoreAsync(location, space, jobName, parsed.GetValue(runOption), parsed.GetValue(spec), which, cancellation).ConfigureAwait(false)
                    : FromLocalState(StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption)), space, jobName, parsed.GetValue(runOption), which);
            }
            catch (FormatException e)
            {
                (facts, error) = (null, $"--results: {e.Message}");
            }

            if (facts is null)
            {
                await stderr.WriteLineAsync($"explain: {error}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            foreach (var line in Lines(facts))
            {
                await stdout.WriteLineAsync(line).ConfigureAwait(false);
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }

    /// <summary>The explanation, from its facts: pure.</summary>
    internal static IEnumerable<string> Lines(Facts facts)
    {
        var (job, rows) = (facts.Job, facts.Rows);
        var head = string.Create(CultureInfo.InvariantCulture, $"{job.Metadata.Name} index {facts.Index} (run {facts.RunId})");
        if (rows.LastOrDefault(r => r.Status == AttemptOutcome.Succeeded.ToLedger()) is { ReusedFrom: { } source } reused)
        {
            yield return $"{head}: reused the result of {source} (attempt {reused.Attempt}); it did not run";
            yield break;
        }

        var outcome = rows.Count == 0 ? "has not run" : string.Create(CultureInfo.InvariantCulture, $"ran ({rows.Count} attempt(s), last {rows[^1].Status})");
        yield return $"{head} {outcome}; its point key is {facts.Key.Hash}";
        if (!job.Spec.ReusesResults)
        {
            yield return "  reuse is off for it (spec.reuse: false)";
        }

        if (rows.Select(r => r.Reason).LastOrDefault(r => r?.Contains("was deleted or changed", StringComparison.Ordinal) == true) is { } refused)
        {
            yield return $"  an earlier result matched but was not taken: {refused}";
        }

        if (facts.Earlier.Count == 0)
        {
            yield return $"  no earlier point in namespace {job.Metadata.Namespace} to reuse";
            yield break;
        }

        var nearest = facts.Earlier.Select(p => (p.Source, Differs: facts.Key.DifferingFrom(p.Fields))).OrderBy(p => p.Differs.Count).First();
        if (nearest.Differs.Count == 0)
        {
            yield return $"  an identical earlier point exists: {nearest.Source}; it was not taken (reuse off, or this index had run before)";
            yield break;
        }

        yield return string.Create(CultureInfo.InvariantCulture,
            $"  nearest earlier point: {nearest.Source}, {PointKey.FieldNames.Count - nearest.Differs.Count} of {PointKey.FieldNames.Count} fields equal");
        yield return $"  differs in: {string.Join(", ", nearest.Differs)}";
    }

    /// <summary>The local backend's store: its runs and points in <c>state.db</c>, its attempts on disk.</summary>
    private static (Facts?, string?) FromLocalState(string store, string ns, string name, string? runOption, int index)
    {
        var (job, runId, error) = RerunCommand.FindRun(store, ns, name, runOption);
        if (job is null || OutsideRun(job, index) is { } outside)
        {
            return (null, error ?? OutsideRun(job!, index));
        }

        var results = new LocalResultsStore(store);
        var rows = Enumerable.Range(1, results.HighestAttemptOnDisk(name, runId!, index)).Select(a => results.ReadLedgerRow(name, runId!, index, a)).OfType<LedgerRow>().ToList();
        using var state = RunStateStore.Open(store);
        var points = state.PointsOf(ns);
        // The key as the index ran (its recorded fields), else as the spec and the program's files give it now; the
        // points recorded before its own are those it could have taken.
        var own = points.LastOrDefault(p => p.RunId == runId && p.Index == index);
        var key = own is not null ? new PointKey(own.Key, PointKey.ParseFields(own.Fields))
            : PointKey.For(job, new SweepPlan(job.Spec).For(index), PointReuse.ProgramOf(job, Environment.CurrentDirectory));
        var before = own is null ? points.Count : points.ToList().IndexOf(own);
        var earlier = points.Take(before).Where(p => p.RunId != runId)
            .Select(p => (PointReuse.SourceOf(p), PointKey.ParseFields(p.Fields))).ToList();
        return (new Facts(job, runId!, index, rows, key, earlier), null);
    }

    /// <summary>A store the results wrapper wrote: the run's spec and ledger rows, and the namespace's <c>points/</c>.</summary>
    private static async Task<(Facts?, string?)> FromStoreAsync(string location, string ns, string name, string? runOption, string? specFile, int index, CancellationToken cancellation)
    {
        var given = specFile is null ? null : StoredSpec.Parse(await File.ReadAllTextAsync(specFile, cancellation).ConfigureAwait(false));
        runOption ??= given is null ? null : RunIdentity.For(given);
        var store = StoreLocation.OpenResults(location);
        try
        {
            var runs = (await ResultsCompactor.FindRunsAsync(store, name, cancellation).ConfigureAwait(false)).Select(r => r.RunId).Where(r => runOption is null || r == runOption).ToList();
            if (runs.Count != 1)
            {
                return (null, runs.Count == 0 ? $"no run of {name}{(runOption is null ? "" : $" {runOption}")} in {store.Location}"
                    : $"{name} has {runs.Count} runs in {store.Location} ({string.Join(", ", runs)}): name one with --run");
            }

            // The spec: given, else the one AWS Batch runs publish, else the one a compaction keeps in the run manifest.
            var runId = runs[0];
            var job = given ?? await StoredSpecAsync(store, name, runId, cancellation).ConfigureAwait(false);
            if (job is null)
            {
                return (null, $"{name} run {runId} keeps no spec in {store.Location} (a run on Kubernetes keeps it in the cluster): give the BatchJob file with --spec");
            }

            if (job.Metadata.Namespace != ns || OutsideRun(job, index) is { } outside)
            {
                return (null, job.Metadata.Namespace != ns ? $"{name} run {runId} is in namespace {job.Metadata.Namespace}, not {ns}" : OutsideRun(job, index));
            }

            var rows = new List<LedgerRow>();
            await foreach (var item in store.ListAsync(StoreLayout.IndexPrefix(name, runId, index) + "/", cancellation).ConfigureAwait(false))
            {
                if (item.Key.EndsWith("/" + StoreLayout.LedgerFile, StringComparison.Ordinal) && await store.GetBytesAsync(item.Key, cancellation).ConfigureAwait(false) is { } row)
                {
                    rows.Add(LedgerRow.FromJson(row));
                }
            }

            rows.Sort((a, b) => a.Attempt.CompareTo(b.Attempt));
            var earlier = new List<(string, IReadOnlyList<(string, string)>)>();
            await foreach (var item in store.ListAsync(StoreLayout.PointsPrefix(ns), cancellation).ConfigureAwait(false))
            {
                if (await store.GetBytesAsync(item.Key, cancellation).ConfigureAwait(false) is { } bytes && StoredPoint.FromJson(bytes) is { Fields: { } fields } point
                    && !point.Source.StartsWith(StoreLayout.RunPrefix(name, runId) + "/", StringComparison.Ordinal))
                {
                    earlier.Add((point.Source, PointKey.ParseFields(fields)));
                }
            }

            return (new Facts(job, runId, index, rows, PointKey.For(job, new SweepPlan(job.Spec).For(index), program: null), earlier), null);
        }
        finally
        {
            (store as IDisposable)?.Dispose();
        }
    }

    private static async Task<BatchJob?> StoredSpecAsync(IResultsStore store, string name, string runId, CancellationToken cancellation)
    {
        if (await store.GetBytesAsync(StoreLayout.SpecKey(name, runId), cancellation).ConfigureAwait(false) is { } spec)
        {
            return StoredSpec.Parse(System.Text.Encoding.UTF8.GetString(spec));
        }

        if (await store.GetBytesAsync(StoreLayout.RunManifestKey(name, runId), cancellation).ConfigureAwait(false) is not { } manifest)
        {
            return null;
        }

        using var document = System.Text.Json.JsonDocument.Parse(manifest);
        return document.RootElement.TryGetProperty("spec", out var resolved) && resolved.ValueKind == System.Text.Json.JsonValueKind.Object
            ? StoredSpec.Parse(resolved.GetRawText())
            : null;
    }

    private static string? OutsideRun(BatchJob job, int index) => index >= 0 && index < job.Spec.Completions ? null
        : string.Create(CultureInfo.InvariantCulture, $"--index: index {index} is outside the run: it has {job.Spec.Completions} indexes (0 to {job.Spec.Completions - 1})");
}
