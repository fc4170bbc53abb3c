using System.Text;
using BatchRunner.Aws.Intake;
using BatchRunner.Aws.Tests.Support;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;

namespace BatchRunner.Aws.Tests;

public sealed class IntakeRequestReaderTests
{
    public static TheoryData<string> Examples => new(Directory.GetFiles(Path.Combine(Fauxqs.RepoRoot, "manifests", "examples"), "*.yaml")
        .Where(f => !f.Contains("invalid", StringComparison.Ordinal)));

    [Theory]
    [MemberData(nameof(Examples))]
    public void The_canonical_document_reads_back_as_the_same_job(string path)
    {
        var request = Read(File.ReadAllText(path));
        var again = Read(request.Document);

        Assert.Equal(request.Document, again.Document);
        Assert.Equal(request.ContentHash, again.ContentHash);
        Assert.Equal(RunIdentity.SpecJson(request.Job), RunIdentity.SpecJson(again.Job));
    }

    [Fact]
    public void The_same_job_written_as_yaml_or_json_in_any_key_order_has_one_content_hash()
    {
        var yaml = Read("""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: same, labels: {b: "2", a: "1"}}
            spec: {command: [/bin/sh, -c, "true"], sweep: {grid: {y: [1, 2], x: [0.5]}}}
            """);
        var json = Read("""
            {"kind":"BatchJob","spec":{"sweep":{"grid":{"x":[0.5],"y":[1,2]}},"command":["/bin/sh","-c","true"]},
             "metadata":{"labels":{"a":"1","b":"2"},"name":"same","namespace":"default"},"apiVersion":"batchrunner.io/v1alpha1"}
            """);

        Assert.Equal(yaml.ContentHash, json.ContentHash);
        Assert.NotEqual(yaml.ContentHash, Read(Specs.Yaml("same")).ContentHash);
    }

    [Fact]
    public void A_document_without_a_name_is_named_by_its_request_and_keeps_every_value_as_written()
    {
        var body = """
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata:
              namespace: team-a   # a comment
            spec:
              command: ["/bin/sh", "-c", "true"]
              args: ["5", '0.5', "yes"]
              env: [{name: LEVEL, value: "007"}]
              sweep: {grid: {rate: [1.0, 2.5], mode: [fifo, "1"]}}
            """;

        var result = IntakeRequestReader.Read(body, requestId: "Run 7", deduplicationId: null);

        var request = Assert.IsType<IntakeRequest>(result.Request);
        Assert.Equal(IdentitySource.RequestId, request.IdentitySource);
        Assert.Equal(("team-a", RequestIdentity.NameFor("Run 7")), (request.Job.Metadata.Namespace, request.Job.Metadata.Name));
        Assert.Equal(["5", "0.5", "yes"], request.Job.Spec.Args);
        Assert.Equal("007", Assert.Single(request.Job.Spec.Env).Value);
        Assert.Equal(["\"fifo\"", "\"1\""], request.Job.Spec.Sweep!.Grid.Single(a => a.Name == "mode").Values.Select(v => v.Json));
        Assert.Equal(["1", "2.5"], request.Job.Spec.Sweep!.Grid.Single(a => a.Name == "rate").Values.Select(v => v.Json));
    }

    [Fact]
    public void A_json_document_without_metadata_is_named_by_its_body()
    {
        const string body = """{"apiVersion":"batchrunner.io/v1alpha1","kind":"BatchJob","spec":{"command":["/bin/sh"]}}""";

        var request = IntakeRequestReader.Read(body, null, null).Request!;

        Assert.Equal((IdentitySource.BodyHash, "default"), (request.IdentitySource, request.Job.Metadata.Namespace));
        Assert.Equal(RequestIdentity.Derive(null, null, body).Name, request.Job.Metadata.Name);
    }

    [Theory]
    [InlineData("spec: {parallelism: 0}")]
    [InlineData("spec: {command: [/bin/sh], colour: red, args: [1, 5]}")]
    [InlineData("spec: {command: [/bin/sh], completions: 3, sweep: {grid: {x: [1, 2]}}}")]
    [InlineData("spec: {command: [/bin/sh], env: [{name: BATCHRUNNER_X, value: y}]}")]
    public void An_invalid_document_is_refused_with_the_parser_s_errors_word_for_word(string spec)
    {
        var body = $"apiVersion: batchrunner.io/v1alpha1\nkind: BatchJob\nmetadata: {{name: bad}}\n{spec}\n";

        var rejection = IntakeRequestReader.Read(body, null, null).Rejection!;

        Assert.Equal(RejectCode.InvalidSpec, rejection.Code);
        Assert.Equal(BatchJobParser.Parse(body).Errors.Select(e => e.ToString()), rejection.Reason.Split('\n'));
    }

    [Fact]
    public void Without_a_name_the_other_errors_are_still_reported_and_the_missing_name_is_not()
    {
        var rejection = IntakeRequestReader.Read("apiVersion: batchrunner.io/v1alpha1\nkind: BatchJob\nspec: {parallelism: 0}\n", null, null).Rejection!;

        Assert.Equal(RejectCode.InvalidSpec, rejection.Code);
        Assert.DoesNotContain("metadata", rejection.Reason, StringComparison.Ordinal);
        Assert.Contains("spec.parallelism: must be >= 1, got 0", rejection.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", RejectCode.Empty)]
    [InlineData("  \n\t ", RejectCode.Empty)]
    [InlineData("# only a comment\n", RejectCode.Empty)]
    [InlineData("spec: {command: [\"caf\uFFFD\"]}", RejectCode.NotUtf8)]
    [InlineData("\uFFFD\uFFFD\uFFFDPK\uFFFD\uFFFD", RejectCode.Binary)]
    [InlineData("kind: BatchJob\u0000\u0001", RejectCode.Binary)]
    [InlineData("[1, 2, 3]", RejectCode.InvalidSpec)]
    public void A_body_that_is_not_a_text_document_is_refused_with_its_reason(string body, RejectCode code)
    {
        Assert.Equal(code, IntakeRequestReader.Read(body, null, null).Rejection?.Code);
    }

    [Fact]
    public void A_body_with_an_unpaired_surrogate_is_not_utf8()
    {
        var body = "apiVersion: batchrunner.io/v1alpha1\nkind: BatchJob\nmetadata: {name: x}\nspec: {command: [\"" + '\uD800' + "\"]}\n";

        Assert.Equal(RejectCode.NotUtf8, IntakeRequestReader.Read(body, null, null).Rejection?.Code);
    }

    [Theory]
    [InlineData("timeoutSeconds: 1e400", "spec.timeoutSeconds: expected a number, got the string \"1e400\"")]
    [InlineData("retry: {maxBackoffSeconds: 1e999}", "spec.retry.maxBackoffSeconds: expected a number, got the string \"1e999\"")]
    public void A_number_beyond_double_is_refused_naming_its_field(string setting, string reason)
    {
        var rejection = IntakeRequestReader.Read(Specs.Yaml("huge-timeout", extraSpec: setting), null, null).Rejection!;

        Assert.Equal(RejectCode.InvalidSpec, rejection.Code);
        Assert.Contains(reason, rejection.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_number_beyond_double_in_a_json_body_is_refused_naming_its_field()
    {
        var body = """{"apiVersion":"batchrunner.io/v1alpha1","kind":"BatchJob","metadata":{"name":"huge"},"spec":{"command":["true"],"timeoutSeconds":1e400}}""";

        var rejection = IntakeRequestReader.Read(body, null, null).Rejection!;

        Assert.Equal(RejectCode.InvalidSpec, rejection.Code);
        Assert.Contains("spec.timeoutSeconds:", rejection.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_body_over_the_limit_is_refused_before_it_is_parsed()
    {
        var body = Specs.Yaml("big", extraSpec: "args: [\"" + new string('é', 3000) + "\"]");

        var rejection = IntakeRequestReader.Read(body, null, null, maxBodyBytes: 4096).Rejection!;

        Assert.Equal(RejectCode.Oversize, rejection.Code);
        Assert.Contains($"{Encoding.UTF8.GetByteCount(body):N0} bytes", rejection.Reason, StringComparison.Ordinal);
        Assert.NotNull(IntakeRequestReader.Read(body, null, null, maxBodyBytes: 8192).Request);
    }

    private static IntakeRequest Read(string body) =>
        IntakeRequestReader.Read(body, null, null) is { Request: { } request } ? request : throw new InvalidOperationException("not valid");
}
