using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using BatchRunner.Aws.Athena;
using BatchRunner.Aws.Batch;
using BatchRunner.Aws.Protocol;
using BatchRunner.Aws.Tests.Batch;

namespace BatchRunner.Aws.Tests.Protocol;

/// <summary>
/// AWS Batch and Athena requests and answers go through source-generated metadata (the CLI is published as Native
/// AOT). What goes on the wire, what is read from it and the job definitions' names must stay byte for byte what
/// the reflection-based options they replace gave.
/// </summary>
public sealed class SourceGeneratedJsonTests
{
    /// <summary>What <see cref="AwsJsonClient.CamelCaseJson"/> was before source generation, reflection-based.</summary>
    private static readonly JsonSerializerOptions ReflectionCamelCase = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    };

    /// <summary>What <see cref="AwsJsonClient.PascalCaseJson"/> was before source generation, reflection-based.</summary>
    private static readonly JsonSerializerOptions ReflectionPascalCase = new()
    {
        PropertyNameCaseInsensitive = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    };

    private const string Awkward = "\"quoted\" <b>&amp;</b> 'single' back\\slash\nnew line\ttab Zürich 東京 🚀 \u0001 \u2028 +";

    private static readonly Dictionary<string, object> BatchRequests = new()
    {
        ["submit, everything"] = new SubmitJobRequest
        {
            JobName = "sweep-r-0",
            JobQueue = "arn:aws:batch:us-east-1:123456789012:job-queue/batchrunner",
            JobDefinition = "arn:aws:batch:us-east-1:123456789012:job-definition/batchrunner-0123456789abcdef0123:3",
            ShareIdentifier = "team-a",
            ArrayProperties = new ArrayProperties(10_000),
            ContainerOverrides = new ContainerOverrides
            {
                Command = ["/opt/batchrunner/batchrunner-exec", "--spec", "s3://bucket/p/_spec.json", "--", "sh", "-c", Awkward],
                Environment = [new NameValue("BATCHRUNNER_INDEX_OFFSET", "20000"), new NameValue("QUOTED", Awkward)],
                ResourceRequirements = [new ResourceRequirement("VCPU", "0.25"), new ResourceRequirement("MEMORY", "512")],
            },
            RetryStrategy = new RetryStrategy(3, [new EvaluateOnExit { OnStatusReason = "Host EC2*", Action = "RETRY" }, new EvaluateOnExit { OnExitCode = "*", Action = "EXIT" }]),
            PropagateTags = true,
            Timeout = new JobTimeout(3600),
            Tags = new Dictionary<string, string> { ["batchrunner.io/batchjob"] = "sweep", ["batchrunner.io/run"] = "r", ["note"] = Awkward },
        },
        ["submit, the least"] = new SubmitJobRequest { JobName = "single", JobQueue = "q", JobDefinition = "d", RetryStrategy = new RetryStrategy(null) },
        ["register"] = new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "batchrunner-0123456789abcdef0123",
            ContainerProperties = new ContainerProperties
            {
                Image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sim:1",
                Command = ["true"],
                JobRoleArn = "arn:aws:iam::123456789012:role/job",
                ExecutionRoleArn = "arn:aws:iam::123456789012:role/execution",
                Environment = [new NameValue("LOG_LEVEL", Awkward)],
                ResourceRequirements = [new ResourceRequirement("VCPU", "16"), new ResourceRequirement("MEMORY", "122880")],
                LogConfiguration = new LogConfiguration("awslogs", new Dictionary<string, string> { ["awslogs-group"] = "/batchrunner/jobs" }),
                NetworkConfiguration = new NetworkConfiguration("ENABLED"),
                FargatePlatformConfiguration = new FargatePlatformConfiguration("LATEST"),
            },
            PlatformCapabilities = ["FARGATE"],
            PropagateTags = false,
            Tags = new Dictionary<string, string> { ["batchrunner.io/managed-by"] = "batchrunner" },
        },
        ["describe definitions"] = new DescribeJobDefinitionsRequest { JobDefinitions = ["a:1", "b"], MaxResults = 100, JobDefinitionName = "n", Status = "ACTIVE", NextToken = "t==" },
        ["describe jobs"] = new DescribeJobsRequest(["j-1", "j-2:7"]),
        ["list jobs"] = new ListJobsRequest
        {
            JobQueue = "q", ArrayJobId = "j-1", JobStatus = "FAILED", MaxResults = 1000, NextToken = "n",
            Filters = [new NameValues("JOB_NAME", ["sweep-*", Awkward])],
        },
        ["cancel"] = new CancelJobRequest("j-1", Awkward),
        ["terminate"] = new TerminateJobRequest("j-1", "BatchJob deleted"),
        ["empty answer"] = new EmptyResponse(),
    };

    private static readonly Dictionary<string, (Type Type, string Json)> BatchAnswers = new()
    {
        ["register"] = (typeof(RegisterJobDefinitionResponse), """{"jobDefinitionName":"n","jobDefinitionArn":"arn:aws:batch:us-east-1:1:job-definition/n:3","revision":3}"""),
        ["describe definitions"] = (typeof(DescribeJobDefinitionsResponse), """
            {"jobDefinitions":[{"jobDefinitionName":"n","jobDefinitionArn":"a","revision":"12","status":"ACTIVE","tags":{"k":"v"},"type":"container",
             "containerProperties":{"image":"x"}},{"JOBDEFINITIONNAME":"m","revision":1}],"nextToken":null}
            """),
        ["submit"] = (typeof(SubmitJobResponse), """{"jobName":"sweep-r-0","jobId":"0b5c6d4e-1111","jobArn":"arn:aws:batch:us-east-1:1:job/0b5c6d4e-1111"}"""),
        ["describe jobs"] = (typeof(DescribeJobsResponse), """
            {"jobs":[{"jobName":"sweep-r-0","jobId":"j-1","jobArn":"arn","jobQueue":"q","status":"FAILED","statusReason":"Array Child Job failed \"<x>\"",
             "createdAt":1763819877000,"startedAt":1763819878000,"stoppedAt":1763819999123,"jobDefinition":"d:3",
             "attempts":[{"container":{"exitCode":137,"reason":"OutOfMemoryError: Container killed due to memory usage","logStreamName":"s/1"},
                          "startedAt":1,"stoppedAt":2,"statusReason":"Essential container in task exited"}],
             "container":{"exitCode":1,"reason":"r","logStreamName":"s/2"},
             "arrayProperties":{"statusSummary":{"SUCCEEDED":9998,"FAILED":2,"RUNNING":0},"size":10000,"index":null},
             "tags":{"batchrunner.io/run":"r"},"unknownMember":{"deep":[1,2,{"x":null}]}},
             {"jobName":"child","jobId":"j-1:7","jobQueue":"q","status":"SUCCEEDED","arrayProperties":{"index":7}}]}
            """),
        ["list jobs"] = (typeof(ListJobsResponse), """
            {"jobSummaryList":[{"jobId":"j","jobName":"n","jobArn":"a","createdAt":1,"status":"FAILED","statusReason":"s","startedAt":2,"stoppedAt":3,
             "container":{"exitCode":-1,"reason":"CannotPullContainerError"},"arrayProperties":{"size":2,"index":1}}],"nextToken":"t"}
            """),
        ["list jobs, the least"] = (typeof(ListJobsResponse), """{"jobSummaryList":[{"status":"RUNNING"},{"jobId":"j"}]}"""),
        ["describe jobs, the least"] = (typeof(DescribeJobsResponse), """{"jobs":[{"status":"RUNNABLE"},{}]}"""),
        ["empty"] = (typeof(EmptyResponse), "{}"),
    };

    private static readonly Dictionary<string, object> AthenaRequests = new()
    {
        ["start"] = new StartQueryExecutionRequest
        {
            QueryString = "SELECT * FROM \"batchrunner\".\"runs\" WHERE label = 'Zürich <東京>' AND x > 1 -- 🚀\n",
            ClientRequestToken = "3f1c9a5e-0000-4000-8000-00000000abcd",
            QueryExecutionContext = new QueryExecutionContext { Database = "batchrunner", Catalog = "AwsDataCatalog" },
            ResultConfiguration = new ResultConfiguration { OutputLocation = "s3://bucket/athena/" },
            WorkGroup = "primary",
        },
        ["start, the least"] = new StartQueryExecutionRequest { QueryString = "SELECT 1" },
        ["query id"] = new QueryExecutionIdRequest { QueryExecutionId = "q-1" },
        ["results"] = new GetQueryResultsRequest { QueryExecutionId = "q-1", NextToken = Awkward, MaxResults = 1000 },
    };

    private static readonly Dictionary<string, (Type Type, string Json)> AthenaAnswers = new()
    {
        ["start"] = (typeof(StartQueryExecutionResponse), """{"QueryExecutionId":"q-1"}"""),
        ["execution"] = (typeof(GetQueryExecutionResponse), """
            {"QueryExecution":{"QueryExecutionId":"q-1","Query":"SELECT 1","StatementType":"DML",
             "Status":{"State":"FAILED","StateChangeReason":"SYNTAX_ERROR: line 1:8: Column 'x' cannot be resolved",
                       "AthenaError":{"ErrorCategory":2,"ErrorType":1006,"Retryable":false,"ErrorMessage":"line 1:8 \u00e9"},
                       "SubmissionDateTime":1.763819877E9},
             "Statistics":{"EngineExecutionTimeInMillis":123,"DataScannedInBytes":10485760,"TotalExecutionTimeInMillis":456},
             "ResultConfiguration":{"OutputLocation":"s3://bucket/athena/q-1.csv"}}}
            """),
        ["results"] = (typeof(GetQueryResultsResponse), """
            {"ResultSet":{"Rows":[{"Data":[{"VarCharValue":"label"},{"VarCharValue":"n"}]},{"Data":[{"VarCharValue":"Zürich"},{}]}],
             "ResultSetMetadata":{"ColumnInfo":[{"CatalogName":"hive","Name":"label","Type":"varchar","Nullable":"UNKNOWN"},{"Name":"n","Type":"bigint"}]}},
             "NextToken":"next","UpdateCount":0}
            """),
        ["results, other casing"] = (typeof(GetQueryResultsResponse), """{"resultSet":{"rows":[{"data":[{"varCharValue":"a"}]}]},"nextToken":null}"""),
        ["stop"] = (typeof(StopQueryExecutionResponse), "{}"),
    };

    public static TheoryData<string> BatchRequestNames() => new(BatchRequests.Keys);

    public static TheoryData<string> BatchAnswerNames() => new(BatchAnswers.Keys);

    public static TheoryData<string> AthenaRequestNames() => new(AthenaRequests.Keys);

    public static TheoryData<string> AthenaAnswerNames() => new(AthenaAnswers.Keys);

    [Fact]
    public void Every_request_and_answer_type_has_generated_metadata()
    {
        var wire = typeof(BatchApiClient).Assembly.GetTypes()
            .Where(t => t.Name.EndsWith("Request", StringComparison.Ordinal) || t.Name.EndsWith("Response", StringComparison.Ordinal))
            .ToList();
        var batch = wire.Where(t => t.Namespace == typeof(BatchApiClient).Namespace).ToList();
        var athena = wire.Where(t => t.Namespace == typeof(AthenaApiClient).Namespace).ToList();

        Assert.Equal(13, batch.Count);
        Assert.Equal(7, athena.Count);
        Assert.All(batch, t => Assert.Same(BatchJsonContext.Default, AwsJsonClient.CamelCaseJson().GetTypeInfo(t).OriginatingResolver));
        Assert.All(athena, t => Assert.Same(AthenaJsonContext.Default, AwsJsonClient.PascalCaseJson().GetTypeInfo(t).OriginatingResolver));
    }

    [Theory]
    [MemberData(nameof(BatchRequestNames))]
    public void A_batch_request_is_written_as_reflection_wrote_it(string name) =>
        AssertWrittenAsBefore(BatchRequests[name], AwsJsonClient.CamelCaseJson(), BatchJsonContext.Default, ReflectionCamelCase);

    [Theory]
    [MemberData(nameof(BatchAnswerNames))]
    public void A_batch_answer_is_read_as_reflection_read_it(string name) =>
        AssertReadAsBefore(BatchAnswers[name], AwsJsonClient.CamelCaseJson(), BatchJsonContext.Default, ReflectionCamelCase);

    [Theory]
    [MemberData(nameof(AthenaRequestNames))]
    public void An_athena_request_is_written_as_reflection_wrote_it(string name) =>
        AssertWrittenAsBefore(AthenaRequests[name], AwsJsonClient.PascalCaseJson(), AthenaJsonContext.Default, ReflectionPascalCase);

    [Theory]
    [MemberData(nameof(AthenaAnswerNames))]
    public void An_athena_answer_is_read_as_reflection_read_it(string name) =>
        AssertReadAsBefore(AthenaAnswers[name], AwsJsonClient.PascalCaseJson(), AthenaJsonContext.Default, ReflectionPascalCase);

    private enum Shade
    {
        Light,
        Dark,
    }

    private sealed record Own(string? Name, Shade Shade, int? Size);

    [Fact]
    public void A_type_no_context_lists_is_refused_on_every_build_not_only_under_native_aot()
    {
        // Were the wire options to fall back on reflection, a DTO missing from a context would work here and in the
        // JIT-built controller, and fail only in the native CLI.
        Assert.Throws<NotSupportedException>(() => AwsJsonClient.CamelCaseJson().GetTypeInfo(typeof(Own)));
        Assert.Throws<NotSupportedException>(() => AwsJsonClient.PascalCaseJson().GetTypeInfo(typeof(Own)));
        Assert.Equal("""{"shade":"Dark","size":3}""", JsonSerializer.Serialize(new Own(null, Shade.Dark, 3), TestWireJson.CamelCase()));
    }

    [Fact]
    public void A_job_definition_keeps_the_name_its_content_hashed_to_before()
    {
        var job = BatchRig.Job(extra: "  resources: {cpu: 2, memory: 6Gi}");
        var options = new AwsBatchOptions
        {
            Enabled = true, JobQueue = BatchRig.Queue, ExecutionRoleArn = BatchRig.ExecutionRole, LogGroup = "/batchrunner/jobs", AssignPublicIp = true,
        };

        var definition = JobDefinitions.For(job, new FargateSize("2", 6144), options);

        var before = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(definition.ContainerProperties, ReflectionCamelCase))))[..20];
        Assert.Equal(JobDefinitions.NamePrefix + before, definition.JobDefinitionName);
        AssertWrittenAsBefore(definition, AwsJsonClient.CamelCaseJson(), BatchJsonContext.Default, ReflectionCamelCase);
    }

    private static void AssertWrittenAsBefore(object value, JsonSerializerOptions wire, JsonSerializerContext context, JsonSerializerOptions reflection)
    {
        var info = wire.GetTypeInfo(value.GetType());

        Assert.Same(context, info.OriginatingResolver);
        Assert.Equal(JsonSerializer.Serialize(value, value.GetType(), reflection), JsonSerializer.Serialize(value, info));
    }

    private static void AssertReadAsBefore((Type Type, string Json) answer, JsonSerializerOptions wire, JsonSerializerContext context, JsonSerializerOptions reflection)
    {
        var info = wire.GetTypeInfo(answer.Type);
        Assert.Same(context, info.OriginatingResolver);

        var read = JsonSerializer.Deserialize(answer.Json, info);
        var before = JsonSerializer.Deserialize(answer.Json, answer.Type, reflection);

        Assert.NotNull(read);
        Assert.Equal(JsonSerializer.Serialize(before, answer.Type, reflection), JsonSerializer.Serialize(read, answer.Type, reflection));
    }
}
