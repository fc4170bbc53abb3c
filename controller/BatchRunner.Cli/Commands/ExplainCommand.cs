using System.CommandLine;
using System.Globalization;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Store;
using BatchRunner.Core.Sweeps;
using BatchRunner.Local.Execution;
using BatchRunner.Local.State;
using BatchRunner.Store;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner explain NAME --index I</c>: where an index's result came from. A reused index names the earlier
/// attempt it took; one that ran says why no earlier result matched: the nearest earlier point of the namespace (the
/// most fields of its key equal) and the fields that differ, or why an identical one was not taken.
/// </summary>
internal static class ExplainCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("name") { Description = "BatchJob name" };
        var index = new Option<int>("--index", "-i") { Description = "The index to explain", Required = true };
        var ns = new Option<string>("--namespace", "-n") { Description = "The BatchJob's namespace", DefaultValueFactory = _ => "default" };
        var runOption = new Option<string?>("--run") { Description = "The run (default: the BatchJob's latest in the store)" };
        var command = new Command("explain", "Say where an index's result came from: reused from an earlier run, or why no earlier result matched") { name, index, ns, runOption };
        command.SetAction(async (parsed, _) =>
        {
            var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            var (job, runId, error) = RerunCommand.FindRun(store, parsed.GetRequiredValue(ns), parsed.GetRequiredValue(name), parsed.GetValue(runOption));
            var which = parsed.GetValue(index);
            if (error is null && (which < 0 || which >= job!.Spec.Completions))
            {
                error = string.Create(CultureInfo.InvariantCulture, $"--index: index {which} is outside the run: it has {job!.Spec.Completions} indexes (0 to {job.Spec.Completions - 1})");
            }

            if (error is not null)
            {
                await stderr.WriteLineAsync($"explain: {error}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }

            foreach (var line in Explain(store, job!, runId!, which))
            {
                await stdout.WriteLineAsync(line).ConfigureAwait(false);
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }

    internal static IEnumerable<string> Explain(string store, Core.Spec.BatchJob job, string runId, int index)
    {
        var name = job.Metadata.Name;
        var results = new LocalResultsStore(store);
        var rows = Enumerable.Range(1, results.HighestAttemptOnDisk(name, runId, index)).Select(a => results.ReadLedgerRow(name, runId, index, a)).OfType<LedgerRow>().ToList();
        var head = string.Create(CultureInfo.InvariantCulture, $"{name} index {index} (run {runId})");
        if (rows.LastOrDefault(r => r.Status == "succeeded") is { ReusedFrom: { } source } reused)
        {
            yield return $"{head}: reused the result of {source} (attempt {reused.Attempt}); it did not run";
            yield break;
        }

        // The key as this index was run: its recorded fields, else as the spec and the program's files give it now.
        using var state = RunStateStore.Open(store);
        var points = state.PointsOf(job.Metadata.Namespace);
        var own = points.LastOrDefault(p => p.RunId == runId && p.Index == index);
        var key = PointKey.For(job, new SweepPlan(job.Spec).For(index), PointReuse.ProgramOf(job, Environment.CurrentDirectory));
        var fields = own is not null ? PointKey.ParseFields(own.Fields) : key.Fields;
        var keyHash = rows.LastOrDefault()?.PointKey ?? own?.Key ?? key.Hash;
        var outcome = rows.Count == 0 ? "has not run" : string.Create(CultureInfo.InvariantCulture, $"ran ({rows.Count} attempt(s), last {rows[^1].Status})");
        yield return $"{head} {outcome}; its point key is {keyHash}";
        if (!job.Spec.ReusesResults)
        {
            yield return "  reuse is off for it (spec.reuse: false)";
        }

        if (rows.Select(r => r.Reason).LastOrDefault(r => r?.Contains("was deleted or changed", StringComparison.Ordinal) == true) is { } refused)
        {
            yield return $"  an earlier result matched but was not taken: {refused}";
        }

        // Points recorded before this index's own (all of them when it recorded none): what it could have taken.
        var recordedBefore = own is null ? points.Count : points.ToList().IndexOf(own);
        var earlier = points.Take(recordedBefore).Where(p => p.RunId != runId).ToList();
        if (earlier.Count == 0)
        {
            yield return $"  no earlier point in namespace {job.Metadata.Namespace} to reuse";
            yield break;
        }

        var nearest = earlier
            .Select(p => (Point: p, Differs: new PointKey(keyHash, fields).DifferingFrom(PointKey.ParseFields(p.Fields))))
            .OrderBy(p => p.Differs.Count)
            .First();
        if (nearest.Differs.Count == 0)
        {
            yield return $"  an identical earlier point exists: {PointReuse.SourceOf(nearest.Point)}; it was not taken (reuse off, or this index had run before)";
            yield break;
        }

        yield return string.Create(CultureInfo.InvariantCulture,
            $"  nearest earlier point: {PointReuse.SourceOf(nearest.Point)}, {PointKey.FieldNames.Count - nearest.Differs.Count} of {PointKey.FieldNames.Count} fields equal");
        yield return $"  differs in: {string.Join(", ", nearest.Differs)}";
    }
}
