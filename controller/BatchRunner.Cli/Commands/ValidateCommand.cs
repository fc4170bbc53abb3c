using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BatchRunner.Aws.Batch;
using BatchRunner.Backends;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Costs;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Sweeps;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;
using BatchRunner.Local.Query;

namespace BatchRunner.Cli.Commands;

/// <summary><c>batchrunner validate SPEC</c>: parses and checks a spec without running anything.</summary>
internal static class ValidateCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var spec = new Argument<string>("spec") { Description = "BatchJob file (YAML or JSON), or - for standard input" };
        var showIndexes = new Option<bool>("--show-indexes") { Description = "List every index with the parameters and seed it gets" };
        var estimate = new Option<bool>("--estimate") { Description = "Project the run's time and cost from earlier runs of the same BatchJob in the store" };
        var prices = new Option<string?>("--prices") { Description = "With --estimate: a JSON file of prices over the defaults (as batchrunner cost takes)" };
        var results = new Option<string?>("--results") { Description = "With --estimate: a store the cluster backends wrote (s3://bucket/prefix or a folder) instead of the local one" };
        var command = new Command("validate", "Check a BatchJob spec and show what it expands to") { spec, showIndexes, estimate, prices, results };
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

            if (parsed.GetValue(estimate))
            {
                if (await CostCommand.LoadPricesAsync(parsed.GetValue(prices), stderr, cancellation).ConfigureAwait(false) is not { } table)
                {
                    return ExitCodes.InvalidInput;
                }

                var store = parsed.GetValue(results) ?? StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
                await stdout.WriteLineAsync(await EstimateAsync(job, store, table, stderr, cancellation).ConfigureAwait(false)).ConfigureAwait(false);
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

    /// <summary>The run projected from its BatchJob's earlier attempts in the store (those that ran, not reused), or why there is none.</summary>
    private static async Task<string> EstimateAsync(BatchJob job, string store, PriceTable prices, TextWriter stderr, CancellationToken cancellation)
    {
        var (name, ns) = (job.Metadata.Name, job.Metadata.Namespace);
        var nothing = $"estimate: nothing to go on: no earlier attempt of {name} in namespace {ns} in {store}";
        if (!store.StartsWith("s3://", StringComparison.Ordinal) && !Directory.Exists(store))
        {
            return nothing;
        }

        var answer = await QueryCommand.SelectAsync(store, $"""
            SELECT count(DISTINCT run), count(DISTINCT run || '/' || "index"), count(*), coalesce(avg(duration_seconds), 0), coalesce(avg(greatest(60, ceil(duration_seconds))), 0)
            FROM indexes WHERE batchjob = {ResultsQueryEngine.Literal(name)} AND namespace = {ResultsQueryEngine.Literal(ns)} AND status <> 'interrupted' AND reused_from IS NULL
            """, stderr, cancellation).ConfigureAwait(false);
        var row = answer.Rows[0];
        var history = new RunHistory(Convert.ToInt32(row[0], CultureInfo.InvariantCulture), Convert.ToInt32(row[1], CultureInfo.InvariantCulture),
            Convert.ToInt32(row[2], CultureInfo.InvariantCulture), Convert.ToDouble(row[3], CultureInfo.InvariantCulture), Convert.ToDouble(row[4], CultureInfo.InvariantCulture));

        // What an attempt is billed for: on Fargate its task size (a minute at least), elsewhere its requests.
        var resources = job.Spec.Resources;
        var fargate = job.Spec.Backend == Backend.AwsBatch && FargateResources.TryMap(resources.MilliCpu, resources.MemoryBytes, out var size, out _) ? size : null;
        var (vcpus, gib) = fargate is not null ? (fargate.Cores, fargate.MemoryMiB / 1024.0) : (resources.MilliCpu / 1000.0, resources.MemoryBytes / (double)(1L << 30));
        var capacity = job.Spec.Backend == Backend.AwsBatch ? FargateBilling.CapacityOf(AwsBatchDispatcher.AsksForSpot(job)) : null;
        var price = prices.For(job.Spec.Backend.Name, capacity);
        if (CostProjection.Project(history, job.Spec.Completions, job.Spec.Parallelism, vcpus, gib, fargate is not null, price) is not { } projected)
        {
            return nothing;
        }

        var cost = projected.Cost is { } dollars
            ? string.Create(CultureInfo.InvariantCulture, $"${dollars:0.######} ({job.Spec.Backend.Name}{(capacity is null ? "" : $" {capacity}")})")
            : $"no cost: {job.Spec.Backend.Name} has no price (give one with --prices FILE)";
        return string.Create(CultureInfo.InvariantCulture,
            $"estimate from {history.Attempts} attempt(s) over {history.Indexes} index(es) in {history.Runs} earlier run(s): {projected.AttemptsPerIndex:0.##} attempt(s) per index, {history.MeanSeconds:0.###} s each; " +
            $"this run: {job.Spec.Completions} indexes at parallelism {job.Spec.Parallelism}, about {DurationText.Format(projected.Wall)}, {projected.VcpuHours:0.######} vCPU-hours, {projected.GibHours:0.######} GiB-hours, {cost}");
    }
}
