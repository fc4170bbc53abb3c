using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;

namespace BatchRunner.Core.Tests;

public class ValidSpecTests
{
    private static BatchJob QueueSweep(string file) => Specs.Valid(Specs.CorpusText("valid/" + file));

    [Theory]
    [InlineData("completions: 1000000\n  parallelism: 100000", 1_000_000, null)]
    [InlineData("completions: 1000001", 0, "spec.completions")]
    [InlineData("completions: 1000000\n  parallelism: 100001", 0, "spec.parallelism")]
    [InlineData("sweep: {grid: {a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], b: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}, repeats: 10000}", 1_000_000, null)]
    public void A_batchjob_may_have_a_million_indexes_and_a_hundred_thousand_at_once(string spec, int completions, string? refused)
    {
        var parsed = BatchJobParser.Parse($"apiVersion: batchrunner.io/v1alpha1\nkind: BatchJob\nmetadata: {{name: big}}\nspec:\n  command: [/bin/true]\n  {spec}\n");

        if (refused is null)
        {
            Assert.Empty(parsed.Errors);
            Assert.Equal(completions, parsed.Job!.Spec.Completions);
        }
        else
        {
            Assert.Contains(parsed.Errors, e => e.Path == refused);
        }
    }

    [Fact]
    public void Yaml_and_the_equivalent_json_give_equal_jobs()
    {
        var fromYaml = QueueSweep("queue-sweep.yaml");
        var fromJson = QueueSweep("queue-sweep.json");

        Assert.Equal(RunIdentity.SpecJson(fromYaml), RunIdentity.SpecJson(fromJson));
    }

    [Fact]
    public void A_full_document_resolves_every_field()
    {
        var job = QueueSweep("queue-sweep.yaml");
        var spec = job.Spec;

        Assert.Equal(("queue-sweep", "lab"), (job.Metadata.Name, job.Metadata.Namespace));
        Assert.Equal("ops", job.Metadata.Labels["team"]);
        Assert.Equal("ghcr.io/lab/queue-sim:1.4", spec.Image);
        Assert.Equal(["python", "/app/sim.py"], spec.Command);
        Assert.Equal(["--horizon", "1000"], spec.Args);
        Assert.Equal([new EnvVar("MODE", "fast")], spec.Env);
        Assert.Equal(new ResourceRequests("500m", "1Gi", 500, 1L << 30), spec.Resources);
        Assert.Equal((12, 4), (spec.Completions, spec.Parallelism));
        Assert.Equal(["arrival_rate", "servers"], spec.Sweep!.Grid.Select(a => a.Name));
        Assert.Equal(["1", "2", "4"], spec.Sweep.Grid[1].Values.Select(v => v.Json));
        Assert.Equal((2, 42L), (spec.Sweep.Repeats, spec.Sweep.Seed));
        Assert.Equal(new RetryPolicy(3, 5, 60), spec.Retry);
        Assert.Equal((600.0, 7200.5), (spec.TimeoutSeconds, spec.DeadlineSeconds));
        Assert.Equal(Backend.Kubernetes, spec.Backend);
        Assert.Equal(new ResultsSpec("s3://lab-results/queue-sweep", ResultsFormat.Csv), spec.Results);
    }

    [Fact]
    public void A_json_tree_from_the_api_server_binds_like_the_same_text()
    {
        var json = Specs.CorpusText("valid/queue-sweep.json");

        var fromNode = BatchJobParser.FromNode(JsonNode.Parse(json));

        Assert.True(fromNode.IsValid, string.Join("\n", fromNode.Errors));
        Assert.Equal(RunIdentity.SpecJson(Specs.Valid(json)), RunIdentity.SpecJson(fromNode.Job!));
    }

    [Fact]
    public void Kubectl_get_output_with_server_metadata_and_status_is_accepted_and_keeps_the_spec()
    {
        var applied = QueueSweep("queue-sweep.yaml");
        var readBack = QueueSweep("queue-sweep.kubectl.yaml");

        Assert.Equal(JsonSerializer.Serialize(applied.Spec), JsonSerializer.Serialize(readBack.Spec));
        Assert.Equal(RunIdentity.For(applied), RunIdentity.For(readBack));
        Assert.Contains("kubectl.kubernetes.io/last-applied-configuration", readBack.Metadata.Annotations.Keys);
    }

    [Fact]
    public void Omitted_fields_take_their_defaults()
    {
        var job = Specs.Valid(Specs.Yaml());
        var spec = job.Spec;

        Assert.Equal("default", job.Metadata.Namespace);
        Assert.Empty(job.Metadata.Labels);
        Assert.Empty(job.Metadata.Annotations);
        Assert.Null(spec.Image);
        Assert.Empty(spec.Args);
        Assert.Empty(spec.Env);
        Assert.Equal(new ResourceRequests("1", "2Gi", 1000, 2L << 30), spec.Resources);
        Assert.Equal(1, spec.Completions);
        Assert.Equal(1, spec.Parallelism);
        Assert.Null(spec.Sweep);
        Assert.Equal(new RetryPolicy(1, 1, 300), spec.Retry);
        Assert.Null(spec.TimeoutSeconds);
        Assert.Null(spec.DeadlineSeconds);
        Assert.Equal(Backend.Local, spec.Backend);
        Assert.Equal(new ResultsSpec(null, ResultsFormat.Jsonl), spec.Results);
    }

    [Theory]
    [InlineData("    grid: {servers: [1, 2, 4], rate: [0.5, 0.9]}\n    repeats: 5\n", 30)]
    [InlineData("    grid: {servers: [1, 2, 4]}\n", 3)]
    [InlineData("    list: [{rate: 0.5}, {rate: 0.7}, {rate: 0.9}]\n    repeats: 2\n", 6)]
    [InlineData("    repeats: 7\n", 7)]
    public void Completions_default_to_the_sweep_size(string sweep, int expected)
    {
        Assert.Equal(expected, Specs.Valid(Specs.SweepYaml(sweep)).Spec.Completions);
    }

    [Fact]
    public void Completions_equal_to_the_sweep_size_are_accepted()
    {
        var job = Specs.Valid(Specs.Yaml("  completions: 6\n  parallelism: 6\n  sweep:\n    grid: {servers: [1, 2, 4], rate: [0.5, 0.9]}\n"));

        Assert.Equal((6, 6), (job.Spec.Completions, job.Spec.Parallelism));
    }

    [Fact]
    public void Completions_without_a_sweep_are_kept()
    {
        Assert.Equal(25, Specs.Valid(Specs.Yaml("  completions: 25\n")).Spec.Completions);
    }

    [Fact]
    public void Retry_without_max_backoff_keeps_a_cap_no_lower_than_its_backoff()
    {
        Assert.Equal(new RetryPolicy(2, 400, 400), Specs.Valid(Specs.Yaml("  retry: {attempts: 2, backoffSeconds: 400}\n")).Spec.Retry);
    }

    [Fact]
    public void A_document_without_a_backend_takes_its_doors_default()
    {
        var text = Specs.Yaml("  image: busybox:1.36\n");

        Assert.Equal(Backend.Local, BatchJobParser.Parse(text).GetJobOrThrow().Spec.Backend);
        Assert.Equal(Backend.Kubernetes, BatchJobParser.Parse(text, Backend.Kubernetes).GetJobOrThrow().Spec.Backend);
        Assert.Equal(Backend.Local, BatchJobParser.Parse(text + "  backend: local\n", Backend.Kubernetes).GetJobOrThrow().Spec.Backend);
        Assert.Equal(["spec.image: required for backend kubernetes"], Specs.Errors(BatchJobParser.Parse(Specs.Yaml(), Backend.Kubernetes)));
    }

    [Fact]
    public void Whole_reals_mean_the_same_through_kubectl_as_through_the_cli()
    {
        // kubectl sends 2.0 as 2 and 1.0 as 1; the CLI reading the file directly must agree, or run ids would differ by door.
        var direct = Specs.Valid(Specs.Yaml("  completions: 4\n  parallelism: 2.0\n  sweep:\n    grid: {rate: [1.0, 1.5]}\n    repeats: 2\n"));
        var viaKubectl = Specs.Valid(Specs.Yaml("  completions: 4\n  parallelism: 2\n  sweep:\n    grid: {rate: [1, 1.5]}\n    repeats: 2\n"));

        Assert.Equal(2, direct.Spec.Parallelism);
        Assert.Equal(BatchRunner.Core.Runs.RunIdentity.For(viaKubectl), BatchRunner.Core.Runs.RunIdentity.For(direct));
        Assert.Equal("""{"rate":1}""", new BatchRunner.Core.Sweeps.SweepPlan(direct.Spec).For(0).ParamsJson);
    }

    [Fact]
    public void Scalars_follow_the_yaml_1_2_core_schema()
    {
        var job = Specs.Valid(Specs.SweepYaml("""
                list:
                  - {quoted: "5", number: 5, word: yes, real: 0.5, flag: true, off: off, whole: 1.0, big: 1e3}
            """));

        var values = job.Spec.Sweep!.List[0].ToDictionary(p => p.Name, p => p.Value);

        Assert.Equal((JsonValueKind.String, "\"5\""), (values["quoted"].Kind, values["quoted"].Json));
        Assert.Equal((JsonValueKind.Number, "5"), (values["number"].Kind, values["number"].Json));
        Assert.Equal((JsonValueKind.String, "\"yes\""), (values["word"].Kind, values["word"].Json));
        Assert.Equal((JsonValueKind.Number, "0.5"), (values["real"].Kind, values["real"].Json));
        Assert.Equal((JsonValueKind.True, "true"), (values["flag"].Kind, values["flag"].Json));
        Assert.Equal((JsonValueKind.String, "\"off\""), (values["off"].Kind, values["off"].Json));
        Assert.Equal((JsonValueKind.Number, "1"), (values["whole"].Kind, values["whole"].Json));
        Assert.Equal((JsonValueKind.Number, "1000"), (values["big"].Kind, values["big"].Json));
    }

    [Fact]
    public void Yes_and_no_are_strings_where_a_string_is_expected()
    {
        var job = Specs.Valid(Specs.Yaml("  args: [yes, no, on, off, y, n]\n  env: [{name: VERBOSE, value: yes}]\n"));

        Assert.Equal(["yes", "no", "on", "off", "y", "n"], job.Spec.Args);
        Assert.Equal("yes", job.Spec.Env[0].Value);
    }

    [Fact]
    public void Quoted_number_is_a_string_where_unquoted_is_rejected_with_a_hint()
    {
        Assert.Equal("5", Specs.Valid(Specs.Yaml("  env: [{name: THREADS, value: \"5\"}]\n")).Spec.Env[0].Value);
        Assert.Equal(
            ["spec.env[0].value: expected a string, got the number 5 (quote it: \"5\")"],
            Specs.Errors(Specs.Yaml("  env: [{name: THREADS, value: 5}]\n")));
    }

    [Fact]
    public void A_byte_order_mark_and_non_ascii_text_are_accepted()
    {
        var bytes = System.Text.Encoding.UTF8.GetPreamble()
            .Concat(System.Text.Encoding.UTF8.GetBytes(Specs.Yaml("  env: [{name: CITY, value: Zürich}]\n")))
            .ToArray();

        var result = BatchJobParser.Parse(bytes);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Equal("Zürich", result.Job!.Spec.Env[0].Value);
    }

    [Fact]
    public void GetJobOrThrow_returns_a_valid_job_and_throws_every_error_of_an_invalid_one()
    {
        Assert.Equal("sweep", BatchJobParser.Parse(Specs.Yaml()).GetJobOrThrow().Metadata.Name);

        var invalid = BatchJobParser.Parse(Specs.Yaml("  parallelism: 0\n  backend: docker_ce\n"));
        var exception = Assert.Throws<InvalidSpecException>(invalid.GetJobOrThrow);

        Assert.Equal(2, exception.Errors.Count);
        Assert.Equal(
            "spec.backend: must be a backend name (lowercase letters, digits and '-', such as local, kubernetes or aws-batch); got \"docker_ce\"" + Environment.NewLine + "spec.parallelism: must be >= 1, got 0",
            exception.Message);
    }
}

public class QueueAndPrioritySpecTests
{
    [Theory]
    [InlineData("  priority: 7\n", 7, null)]
    [InlineData("  priority: -1000000000\n", -1_000_000_000, null)]
    [InlineData("  priority: high\n", 0, "high")]
    [InlineData("", 0, null)]
    public void Priority_is_a_whole_number_or_a_class_name(string field, int value, string? className)
    {
        var spec = Specs.Valid(Specs.Yaml(field)).Spec;

        Assert.Equal((value, className), (spec.Priority, spec.PriorityClass));
    }

    [Theory]
    [InlineData("  priority: 1.5\n", "spec.priority")]
    [InlineData("  priority: 2000000000\n", "spec.priority")]
    [InlineData("  priority: High Priority\n", "spec.priority")]
    [InlineData("  queue: Research\n", "spec.queue")]
    [InlineData("  queue: 7\n", "spec.queue")]
    public void A_bad_queue_or_priority_is_refused_naming_the_field(string field, string path)
    {
        var errors = Specs.Errors(Specs.Yaml(field));

        Assert.Contains(errors, e => e.StartsWith(path + ":", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("  queue: research\n  priority: high\n")]
    [InlineData("  queue: research\n  priority: -3\n")]
    public void The_canonical_document_reads_back_to_the_same_queue_and_priority(string fields)
    {
        var job = Specs.Valid(Specs.Yaml(fields));

        var again = Specs.Valid(BatchJobDocument.Write(job).Text);

        Assert.Equal((job.Spec.Queue, job.Spec.Priority, job.Spec.PriorityClass), (again.Spec.Queue, again.Spec.Priority, again.Spec.PriorityClass));
    }
}
