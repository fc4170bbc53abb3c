using System.CommandLine;
using System.Text.Json;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Sweeps;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;

namespace BatchRunner.Cli.Commands;

/// <summary><c>batchrunner validate SPEC</c>: parses and checks a spec without running anything.</summary>
internal static class ValidateCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var spec = new Argument<string>("spec") { Description = "BatchJob file (YAML or JSON), or - for standard input" };
        var showIndexes = new Option<bool>("--show-indexes") { Description = "List every index with the parameters and seed it gets" };
        var command = new Command("validate", "Check a BatchJob spec and show what it expands to") { spec, showIndexes };
        command.SetAction(async (parsed, cancellation) =>
        {
            var path = parsed.GetRequiredValue(spec);
            var job = await SpecFile.LoadAsync(path, stderr, cancellation).ConfigureAwait(false);
            if (job is null)
            {
                return ExitCodes.InvalidInput;
            }

            if (job.Spec.Backend == Backend.Local)
            {
                // What run would refuse before starting anything, validate refuses too: the command is looked up the same way.
                try
                {
                    LocalExecutor.CheckCommandExists(job, Environment.CurrentDirectory);
                }
                catch (InvalidSpecException e)
                {
                    await SpecFile.ReportAsync(job.Metadata.Name, e.Errors, stderr).ConfigureAwait(false);
                    return ExitCodes.InvalidInput;
                }
            }

            var parameters = job.Spec.Sweep is { } sweep
                ? string.Join(", ", sweep.Grid.Select(a => $"{a.Name} ({a.Values.Count})").Concat(sweep.List.Count > 0 ? [$"{sweep.List.Count} listed points"] : []))
                : "none";
            await stdout.WriteLineAsync(
                $"{path}: valid BatchJob {job.Metadata.Namespace}/{job.Metadata.Name}, run {RunIdentity.For(job)}: " +
                $"{job.Spec.Completions} indexes, parallelism {job.Spec.Parallelism}, parameters {parameters}").ConfigureAwait(false);
            if (parsed.GetValue(showIndexes))
            {
                IndexTable(job).WritePlain(stdout);
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }

    /// <summary>Every index with its repeat, seed and parameters (one column each, in the sweep's order), as the workload gets them.</summary>
    internal static QueryTable IndexTable(BatchJob job)
    {
        var plan = new SweepPlan(job.Spec);
        var rows = new List<object?[]>(job.Spec.Completions);
        var names = new List<string>();
        var values = new List<Dictionary<string, string>>(job.Spec.Completions);
        for (var index = 0; index < job.Spec.Completions; index++)
        {
            var assignment = plan.For(index);
            using var document = JsonDocument.Parse(assignment.ParamsJson);
            var own = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var parameter in document.RootElement.EnumerateObject())
            {
                if (!names.Contains(parameter.Name))
                {
                    names.Add(parameter.Name);
                }

                own[parameter.Name] = parameter.Value.ValueKind == JsonValueKind.String ? parameter.Value.GetString()! : parameter.Value.GetRawText();
            }

            values.Add(own);
            rows.Add([assignment.Index, assignment.Repeat, assignment.Seed]);
        }

        return new QueryTable(
            ["INDEX", "REPEAT", "SEED", .. names],
            [.. rows.Select((row, i) => (object?[])[.. row, .. names.Select(n => (object?)(values[i].TryGetValue(n, out var v) ? TerminalText.Safe(v) : null))])]);
    }
}
