using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Runs;
using BatchRunner.Local.Execution;
using BatchRunner.Local.State;

namespace BatchRunner.Cli.Commands;

/// <summary><c>batchrunner list [--json]</c>: the BatchJobs in the local store, each with its runs, phases and counts.</summary>
internal static class ListCommand
{
    public static Command Create(TextWriter stdout)
    {
        var json = new Option<bool>("--json") { Description = "One JSON document: every BatchJob with its runs" };
        var command = new Command("list", "List the BatchJobs in the store with their runs, phases and counts") { json };
        command.SetAction(async (parsed, cancellation) =>
        {
            var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
            IReadOnlyList<RunRecord> runs = [];
            if (File.Exists(Path.Combine(store, RunStateStore.FileName)))
            {
                using var state = RunStateStore.Open(store);
                runs = state.ListRuns();
            }

            var batchJobs = runs.GroupBy(r => (r.Namespace, r.Name)).OrderBy(g => g.Key.Namespace, StringComparer.Ordinal).ThenBy(g => g.Key.Name, StringComparer.Ordinal)
                .Select(g => (g.Key.Namespace, g.Key.Name, Runs: g.OrderBy(r => r.CreatedAt).ToList())).ToList();
            if (parsed.GetValue(json))
            {
                await stdout.WriteLineAsync(Json(store, batchJobs.Select(b => (b.Namespace, b.Name, (IReadOnlyList<RunRecord>)b.Runs)))).ConfigureAwait(false);
                return ExitCodes.Succeeded;
            }

            if (batchJobs.Count == 0)
            {
                await stdout.WriteLineAsync($"No BatchJobs yet in {store}").ConfigureAwait(false);
                return ExitCodes.Succeeded;
            }

            new QueryTable(
                ["NAME", "NAMESPACE", "RUNS", "LATEST", "PHASE", "SUCCEEDED", "FAILED", "TOTAL", "STARTED"],
                batchJobs.Select(b => b.Runs[^1] is var latest
                    ? new object?[]
                    {
                        b.Name, b.Namespace, b.Runs.Count, latest.RunId, PhaseOf(store, latest), latest.Succeeded, latest.Failed, latest.Completions,
                        latest.StartedAt?.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
                    }
                    : []).ToList()).WritePlain(stdout);
            return ExitCodes.Succeeded;
        });
        return command;
    }

    /// <summary>The recorded phase, except a Running run without a live runner, which has stopped: Interrupted.</summary>
    internal static string PhaseOf(string store, RunRecord run) =>
        run.Phase == RunPhase.Running && !LocalExecutor.HasLiveRunner(store, run.RunId) ? "Interrupted" : run.Phase.ToString();

    /// <summary>
    /// BatchJobs and their runs as one JSON document (written by hand: the native CLI uses no reflection), with each
    /// run's failed indexes when <paramref name="failed"/> gives them.
    /// </summary>
    internal static string Json(string store, IEnumerable<(string Namespace, string Name, IReadOnlyList<RunRecord> Runs)> batchJobs, Func<RunRecord, IReadOnlyList<IndexRecord>>? failed = null)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("store", store);
            writer.WriteStartArray("batchJobs");
            foreach (var (ns, name, runs) in batchJobs)
            {
                writer.WriteStartObject();
                writer.WriteString("name", name);
                writer.WriteString("namespace", ns);
                writer.WriteStartArray("runs");
                foreach (var run in runs)
                {
                    writer.WriteStartObject();
                    writer.WriteString("run", run.RunId);
                    writer.WriteString("phase", PhaseOf(store, run));
                    writer.WriteNumber("total", run.Completions);
                    writer.WriteNumber("succeeded", run.Succeeded);
                    writer.WriteNumber("failed", run.Failed);
                    Time(writer, "createdAt", run.CreatedAt);
                    Time(writer, "startedAt", run.StartedAt);
                    Time(writer, "finishedAt", run.FinishedAt);
                    if (run.Reason is { } reason)
                    {
                        writer.WriteString("reason", reason);
                    }

                    if (failed?.Invoke(run) is { Count: > 0 } indexes)
                    {
                        writer.WriteStartArray("failedIndexes");
                        foreach (var index in indexes)
                        {
                            writer.WriteStartObject();
                            writer.WriteNumber("index", index.Index);
                            writer.WriteNumber("attempts", index.Attempts);
                            writer.WriteString("reason", index.LastReason);
                            writer.WriteEndObject();
                        }

                        writer.WriteEndArray();
                    }

                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void Time(Utf8JsonWriter writer, string name, DateTimeOffset? at)
    {
        if (at is { } value)
        {
            writer.WriteString(name, value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        }
        else
        {
            writer.WriteNull(name);
        }
    }
}
