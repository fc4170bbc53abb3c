using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Sweeps;
using BatchRunner.Kubernetes.Dispatch;

namespace BatchRunner.Kubernetes.Tests;

/// <summary>
/// The pod entrypoint, run by /bin/sh (dash on Debian) on the plan files the ConfigMap would hold, must give every
/// index exactly the variables SweepPlan gives it in the local backend.
/// </summary>
public sealed class PodEntrypointTests : IDisposable
{
    // The workload of the parity runs: prints what the entrypoint exported, one variable a line.
    private const string PrintVariables =
        """printf '%s\n%s\n%s\n%s\n' "$BATCHRUNNER_INDEX" "$BATCHRUNNER_PARAMS" "$BATCHRUNNER_SEED" "$BATCHRUNNER_REPEAT" """;

    private readonly string _root = Directory.CreateTempSubdirectory("br-entrypoint-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void A_grid_with_repeats_gives_every_index_what_SweepPlan_gives()
    {
        var job = Specs.Job("""
            {"sweep": {"grid": {"servers": [1, 2, 4], "policy": ["fifo", "lifo"], "rate": [0.25, 0.5, 0.75]}, "repeats": 3, "seed": 2026}}
            """);

        Assert.Equal(54, job.Spec.Completions);
        AssertParity(job, Enumerable.Range(0, job.Spec.Completions));
    }

    [Fact]
    public void A_list_sweep_gives_every_index_what_SweepPlan_gives()
    {
        var job = Specs.Job("""
            {"sweep": {"list": [{"servers": 4, "rate": 0.9}, {"rate": 0.1, "servers": 1}, {"servers": 2, "rate": 0.5, "label": "mid"}], "repeats": 2, "seed": 7}}
            """);

        AssertParity(job, Enumerable.Range(0, job.Spec.Completions));
    }

    [Fact]
    public void Without_a_sweep_each_of_the_completions_gets_empty_params_and_its_own_seed()
    {
        var job = Specs.Job("""{"completions": 5}""");

        var results = AssertParity(job, Enumerable.Range(0, 5));
        Assert.All(results, r => Assert.Equal("{}", r.Params));
        Assert.Equal(5, results.Select(r => r.Seed).Distinct().Count());
    }

    [Fact]
    public void A_sweep_of_repeats_only_gives_what_SweepPlan_gives()
    {
        var job = Specs.Job("""{"sweep": {"repeats": 4, "seed": 11}}""");

        AssertParity(job, Enumerable.Range(0, job.Spec.Completions));
    }

    [Fact]
    public void Strings_with_spaces_quotes_backslashes_unicode_and_shell_syntax_reach_the_workload_unchanged()
    {
        var values = new JsonArray(
            "two words", "double \"quoted\"", "single 'quoted'", @"back\slash\n", "line\nbreak\ttab", "Zürich 東京 🚀",
            "$HOME and ${PATH}", "`whoami` $(id)", "*.txt ?", "100% %s %d", "semi;colon|pipe&amp", " leading and trailing ", "");
        var spec = Specs.Spec();
        spec["sweep"] = new JsonObject { ["grid"] = new JsonObject { ["label"] = values, ["flag"] = new JsonArray(true, false) } };
        var job = Specs.Job(spec);

        var results = AssertParity(job, Enumerable.Range(0, job.Spec.Completions));
        Assert.Contains(results, r => r.Params.Contains("東京", StringComparison.Ordinal) || r.Params.Contains(@"\u6771\u4EAC", StringComparison.Ordinal));
    }

    [Fact]
    public void Negative_real_large_and_boolean_values_give_what_SweepPlan_gives()
    {
        var job = Specs.Job("""
            {"sweep": {"list": [
              {"x": -3, "y": -0.125, "ok": true},
              {"x": 9007199254740993, "y": 1e-7, "ok": false},
              {"x": 0, "y": 6.02214076e23, "ok": true},
              {"x": -9223372036854775808, "y": 2.5, "ok": false}
            ], "repeats": 2}}
            """);

        AssertParity(job, Enumerable.Range(0, job.Spec.Completions));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(9007199254740993L)]
    [InlineData(long.MaxValue)]
    public void Seeds_match_SweepPlan_for_any_base_seed(long seed)
    {
        var spec = Specs.Spec("""{"sweep": {"grid": {"a": [1, 2, 3]}, "repeats": 5}}""");
        spec["sweep"]!["seed"] = seed;

        AssertParity(Specs.Job(spec), Enumerable.Range(0, 15));
    }

    [Fact]
    public void A_sample_of_a_100000_index_grid_gives_what_SweepPlan_gives()
    {
        var job = HundredThousandIndexGrid();
        var random = new Random(20260);
        var sample = new[] { 0, 1, 2, 9, 10, 99, 100, 999, 50_000, 99_998, 99_999 }
            .Concat(Enumerable.Range(0, 45).Select(_ => random.Next(job.Spec.Completions)));

        Assert.Equal(100_000, job.Spec.Completions);
        AssertParity(job, sample.Distinct());
    }

    [Theory]
    [InlineData("3,7-9,20", new[] { 3, 7, 8, 9, 20 })]
    [InlineData("0", new[] { 0 })]
    [InlineData("5-9", new[] { 5, 6, 7, 8, 9 })]
    [InlineData("1,4,10-11,29", new[] { 1, 4, 10, 11, 29 })]
    public void In_a_reruns_Job_each_completion_runs_the_chosen_index_at_its_position_with_its_own_parameters_and_seed(string chosen, int[] indexes)
    {
        var job = Specs.Job("""{"sweep": {"grid": {"a": [1, 2, 3, 4, 5], "b": ["x", "y", "z"]}, "repeats": 2, "seed": 3}}""");
        var plan = new SweepPlan(job.Spec);

        for (var position = 0; position < indexes.Length; position++)
        {
            var result = RunEntrypoint(job, position, ["/bin/sh", "-c", PrintVariables], new Dictionary<string, string?> { [WorkloadEnvironment.RerunIndexes] = chosen });

            Assert.True(result.ExitCode == 0, result.Stderr);
            var expected = plan.For(indexes[position]);
            Assert.Equal(
                [expected.Index.ToString(CultureInfo.InvariantCulture), expected.ParamsJson, expected.Seed.ToString(CultureInfo.InvariantCulture), expected.Repeat.ToString(CultureInfo.InvariantCulture)],
                result.Stdout.TrimEnd('\n').Split('\n'));
        }

        var beyond = RunEntrypoint(job, indexes.Length, ["/bin/sh", "-c", PrintVariables], new Dictionary<string, string?> { [WorkloadEnvironment.RerunIndexes] = chosen });
        Assert.Equal(70, beyond.ExitCode);
        Assert.Contains($"completion index {indexes.Length} is beyond BATCHRUNNER_INDEXES ({chosen})", beyond.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_JOB_COMPLETION_INDEX_the_entrypoint_exits_70_saying_why_and_runs_nothing()
    {
        var job = Specs.Job("""{"completions": 2}""");
        var marker = Path.Combine(_root, "ran");

        var result = RunEntrypoint(job, index: null, ["/bin/sh", "-c", $"touch {marker}"]);

        Assert.Equal(70, result.ExitCode);
        Assert.Contains("JOB_COMPLETION_INDEX is not set", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("Indexed Jobs", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void The_command_and_args_of_the_job_manifest_reach_the_workload_literally()
    {
        var job = Specs.Job("""{"command": ["printf", "[%s]\\n"], "args": ["two words", "$HOME", "*", "", "a'b\"c", "--flag=$(id)"]}""");
        var container = JobManifests.IndexedJob(job, Specs.Uid, ClusterCapabilities.Current, DispatchSettings.Default).Spec.Template.Spec.Containers[0];

        var result = RunEntrypoint(job, 0, container.Args);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("[two words]\n[$HOME]\n[*]\n[]\n[a'b\"c]\n[--flag=$(id)]\n", result.Stdout);
    }

    [Fact]
    public void A_pod_of_the_job_manifest_sees_the_same_workload_environment_as_the_local_backend()
    {
        var job = Specs.Job("""{"env": [{"name": "LOG_LEVEL", "value": "debug"}], "sweep": {"grid": {"a": [1, 2]}, "repeats": 2, "seed": 5}}""");
        var container = JobManifests.IndexedJob(job, Specs.Uid, ClusterCapabilities.Current, DispatchSettings.Default).Spec.Template.Spec.Containers[0];
        var output = Path.Combine(_root, "pod-output");
        var environment = container.Env.ToDictionary(e => e.Name, string? (e) => e.Value);
        environment[WorkloadEnvironment.OutputDir] = output;
        var names = WorkloadEnvironment.For(job, "r", new SweepPlan(job.Spec).For(0), output).Select(v => v.Key).ToList();
        var print = string.Concat(names.Select(n => $"printf '%s=%s\\n' {n} \"${n}\";"));

        var result = RunEntrypoint(job, 3, ["/bin/sh", "-c", print], environment);

        var expected = WorkloadEnvironment.For(job, RunIdentity.For(job), new SweepPlan(job.Spec).For(3), output);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(string.Concat(expected.Select(v => $"{v.Key}={v.Value}\n")), result.Stdout);
        Assert.True(Directory.Exists(output));
    }

    [Fact]
    public void A_pod_of_the_job_manifest_gets_the_backend_from_the_plan()
    {
        var job = Specs.Job();
        var container = JobManifests.IndexedJob(job, Specs.Uid, ClusterCapabilities.Current, DispatchSettings.Default).Spec.Template.Spec.Containers[0];

        var result = RunEntrypoint(job, 0, ["/bin/sh", "-c", "printf %s \"$BATCHRUNNER_BACKEND\""], container.Env?.ToDictionary(e => e.Name, string? (e) => e.Value));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("kubernetes", result.Stdout);
    }

    [Theory]
    [InlineData("sweep-1")]
    [InlineData("it's")]
    [InlineData("'$(touch x)' `id` \"q\" \\ * ${HOME} ''")]
    public void A_value_quoted_for_the_plan_reads_back_literally(string value)
    {
        var result = Run(["/bin/sh", "-c", "export V=" + PodEntrypoint.ShellQuote(value) + "; printf %s \"$V\""], []);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(value, result.Stdout);
    }

    [Fact]
    public void BATCHRUNNER_OUTPUT_DIR_is_kept_when_set_and_created()
    {
        var job = Specs.Job();
        var output = Path.Combine(_root, "given", "out dir");

        var result = RunEntrypoint(job, 0, ["/bin/sh", "-c", "printf %s \"$BATCHRUNNER_OUTPUT_DIR\""], new() { [WorkloadEnvironment.OutputDir] = output });

        Assert.Equal(output, result.Stdout);
        Assert.True(Directory.Exists(output));
    }

    [Fact]
    public void BATCHRUNNER_OUTPUT_DIR_defaults_to_the_pod_output_volume_when_unset()
    {
        // mkdir is shadowed so that the default directory is named but not created on this machine.
        var bin = Directory.CreateDirectory(Path.Combine(_root, "bin")).FullName;
        File.WriteAllText(Path.Combine(bin, "mkdir"), "#!/bin/sh\nprintf 'mkdir %s\\n' \"$*\" >&2\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(bin, "mkdir"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var path = $"{bin}:{Environment.GetEnvironmentVariable("PATH")}";

        var result = RunEntrypoint(Specs.Job(), 0, ["/bin/sh", "-c", "printf %s \"$BATCHRUNNER_OUTPUT_DIR\""], new() { ["PATH"] = path, [WorkloadEnvironment.OutputDir] = null });

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(PodEntrypoint.OutputPath, result.Stdout);
        Assert.Contains($"mkdir -p {PodEntrypoint.OutputPath}", result.Stderr, StringComparison.Ordinal);
    }

    internal static BatchJob HundredThousandIndexGrid()
    {
        var spec = Specs.Spec();
        var grid = new JsonObject();
        foreach (var name in new[] { "alpha", "beta", "gamma", "delta", "epsilon" })
        {
            grid[name] = new JsonArray(Enumerable.Range(0, 10).Select(v => (JsonNode?)JsonValue.Create(name == "beta" ? v * 0.1 : v)).ToArray());
        }

        spec["sweep"] = new JsonObject { ["grid"] = grid, ["seed"] = 42 };
        return Specs.Job(spec);
    }

    /// <summary>Runs the entrypoint for each index (one /bin/sh process runs them all) and compares with SweepPlan.</summary>
    private List<(string Index, string Params, string Seed, string Repeat)> AssertParity(BatchJob job, IEnumerable<int> indexes)
    {
        var list = indexes.ToList();
        var loop = Path.Combine(_root, "loop.sh");
        File.WriteAllText(loop, """
            for i in "$@"; do
              JOB_COMPLETION_INDEX=$i /bin/sh "$BATCHRUNNER_PLAN_DIR/entrypoint.sh" /bin/sh -c "$WORKLOAD" || exit $?
            done
            """.Replace("\r\n", "\n", StringComparison.Ordinal));
        var plan = WritePlan(job);
        var result = Run(
            ["/bin/sh", loop, .. list.Select(i => i.ToString(CultureInfo.InvariantCulture))],
            new() { ["WORKLOAD"] = PrintVariables, ["BATCHRUNNER_PLAN_DIR"] = plan, [WorkloadEnvironment.OutputDir] = Path.Combine(_root, "output") });
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stderr}");

        var lines = result.Stdout.Split('\n');
        Assert.Equal((list.Count * 4) + 1, lines.Length);
        var sweep = new SweepPlan(job.Spec);
        var results = new List<(string, string, string, string)>();
        for (var n = 0; n < list.Count; n++)
        {
            var expected = sweep.For(list[n]);
            var actual = (Index: lines[4 * n], Params: lines[(4 * n) + 1], Seed: lines[(4 * n) + 2], Repeat: lines[(4 * n) + 3]);
            Assert.Equal(
                (expected.Index.ToString(CultureInfo.InvariantCulture), expected.ParamsJson, expected.Seed.ToString(CultureInfo.InvariantCulture), expected.Repeat.ToString(CultureInfo.InvariantCulture)),
                actual);
            results.Add(actual);
        }

        return results;
    }

    /// <summary>Writes the plan ConfigMap's files to a fresh directory, as the pod would see them mounted.</summary>
    private string WritePlan(BatchJob job)
    {
        var plan = Directory.CreateDirectory(Path.Combine(_root, "plan-" + Guid.NewGuid().ToString("n"))).FullName;
        foreach (var (key, content) in PodEntrypoint.PlanFiles(job))
        {
            File.WriteAllText(Path.Combine(plan, key), content, new UTF8Encoding(false));
        }

        return plan;
    }

    private ShellResult RunEntrypoint(BatchJob job, int? index, IEnumerable<string> arguments, Dictionary<string, string?>? environment = null)
    {
        var plan = WritePlan(job);
        environment ??= [];
        environment["JOB_COMPLETION_INDEX"] = index?.ToString(CultureInfo.InvariantCulture);
        environment.TryAdd(WorkloadEnvironment.OutputDir, Path.Combine(_root, "output"));
        environment["BATCHRUNNER_PLAN_DIR"] = plan;
        return Run(["/bin/sh", Path.Combine(plan, PodEntrypoint.ScriptKey), .. arguments], environment);
    }

    private static ShellResult Run(IReadOnlyList<string> command, Dictionary<string, string?> environment)
    {
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = new UTF8Encoding(false),
            UseShellExecute = false,
        };
        foreach (var argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("BATCHRUNNER_", StringComparison.Ordinal) || k == "JOB_COMPLETION_INDEX").ToList())
        {
            start.Environment.Remove(name);
        }

        foreach (var (name, value) in environment)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return new ShellResult(process.ExitCode, stdout, stderr.GetAwaiter().GetResult());
    }

    private sealed record ShellResult(int ExitCode, string Stdout, string Stderr);
}
