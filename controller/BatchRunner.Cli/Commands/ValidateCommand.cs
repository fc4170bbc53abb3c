using System.CommandLine;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;

namespace BatchRunner.Cli.Commands;

/// <summary><c>batchrunner validate SPEC</c>: parses and checks a spec without running anything.</summary>
internal static class ValidateCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var spec = new Argument<string>("spec") { Description = "BatchJob file (YAML or JSON), or - for standard input" };
        var command = new Command("validate", "Check a BatchJob spec and show what it expands to") { spec };
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
            return ExitCodes.Succeeded;
        });
        return command;
    }
}
