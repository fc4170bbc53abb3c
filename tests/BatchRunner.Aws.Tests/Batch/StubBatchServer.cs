using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BatchRunner.Aws.Tests.Protocol;

namespace BatchRunner.Aws.Tests.Batch;

/// <summary>
/// A stand-in for the AWS Batch API on 127.0.0.1, answering the REST-JSON operations BatchRunner uses as AWS does:
/// job definitions by name and revision; SubmitJob of plain and array jobs (2 to 10,000 children) checked like the
/// real service (names, sizes, timeouts, attempts, known queues and definitions); children that move through
/// SUBMITTED → PENDING → RUNNABLE → STARTING → RUNNING → SUCCEEDED or FAILED, one state per <see cref="Advance"/>
/// (by default each DescribeJobs advances the world), retried while attempts remain; parents with a
/// <c>statusSummary</c>; ListJobs by queue and status, by array parent, by JOB_NAME filter (exact or prefix*),
/// paged; TerminateJob and CancelJob; throttling and access errors answered with AWS's error shapes.
/// Every request body is recorded by operation, for validation against botocore's model.
/// </summary>
public sealed class StubBatchServer : IAsyncDisposable
{
    private static readonly Regex NamePattern = new("^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$", RegexOptions.CultureInvariant);
    private static readonly string[] Flow = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"];

    private readonly object _gate = new();
    private readonly List<StubJob> _jobs = [];
    private readonly Dictionary<string, List<JsonObject>> _definitions = new(StringComparer.Ordinal);
    private StubHttpServer _http = null!;
    private int _nextId;

    private StubBatchServer()
    {
    }

    public Uri Url => _http.Url;

    /// <summary>Every call: operation name (as in the API model) and its JSON body.</summary>
    public ConcurrentQueue<(string Operation, string Body)> Calls { get; } = new();

    /// <summary>Known job queues (names; ARNs ending in <c>job-queue/NAME</c> are accepted too).</summary>
    public HashSet<string> Queues { get; } = new(StringComparer.Ordinal) { "batchrunner", "batchrunner-spot" };

    /// <summary>The exit code of an attempt of an index (1-based attempt): 0 succeeds.</summary>
    public Func<int, int, int> ExitCode { get; set; } = (_, _) => 0;

    /// <summary>Each DescribeJobs moves every job one state on.</summary>
    public bool AdvanceOnDescribe { get; set; } = true;

    /// <summary>The next this many SubmitJob calls are answered 429 TooManyRequestsException.</summary>
    public int ThrottleSubmits { get; set; }

    /// <summary>Like AWS's account limit, a token bucket of this many per second and as many in a burst (0: no limit).</summary>
    public int SubmitsPerSecond { get; set; }

    private double _submitTokens = double.NaN;
    private DateTimeOffset _submitRefilled;

    /// <summary>Answers every call with 403 AccessDeniedException.</summary>
    public bool DenyAccess { get; set; }

    /// <summary>Throttled answers given.</summary>
    public int Throttled { get; private set; }

    public static async Task<StubBatchServer> StartAsync()
    {
        var server = new StubBatchServer();
        server._http = await StubHttpServer.StartAsync(server.Handle).ConfigureAwait(false);
        return server;
    }

    public int CallCount(string operation) => Calls.Count(c => c.Operation == operation);

    public IReadOnlyList<string> Bodies(string operation) => Calls.Where(c => c.Operation == operation).Select(c => c.Body).ToList();

    public IReadOnlyList<StubJob> Jobs
    {
        get
        {
            lock (_gate)
            {
                return _jobs.ToList();
            }
        }
    }

    /// <summary>Children (or plain jobs) not finished now: what runs or waits to.</summary>
    public int UnfinishedIndexes
    {
        get
        {
            lock (_gate)
            {
                return _jobs.Sum(j => j.Children.Count(c => !Finished(c.Status)));
            }
        }
    }

    /// <summary>Moves every job one state on.</summary>
    public void Advance()
    {
        lock (_gate)
        {
            foreach (var job in _jobs)
            {
                foreach (var child in job.Children)
                {
                    Step(job, child);
                }
            }
        }
    }

    private void Step(StubJob job, StubChild child)
    {
        if (Finished(child.Status))
        {
            return;
        }

        var at = Array.IndexOf(Flow, child.Status);
        if (at < Flow.Length - 1)
        {
            child.Status = Flow[at + 1];
            return;
        }

        var code = ExitCode(job.IndexOf(child.Index), child.Attempt);
        child.ExitCode = code;
        if (code == 0)
        {
            child.Status = "SUCCEEDED";
            child.StatusReason = "Essential container in task exited";
        }
        else if (child.Attempt < job.Attempts)
        {
            child.Attempt++;
            child.Status = "RUNNABLE";
        }
        else
        {
            child.Status = "FAILED";
            child.StatusReason = "Essential container in task exited";
        }
    }

    private static bool Finished(string status) => status is "SUCCEEDED" or "FAILED";

    private async Task<StubAnswer> Handle(ReceivedRequest request)
    {
        var operation = request.PathAndQuery switch
        {
            "/v1/registerjobdefinition" => "RegisterJobDefinition",
            "/v1/describejobdefinitions" => "DescribeJobDefinitions",
            "/v1/submitjob" => "SubmitJob",
            "/v1/describejobs" => "DescribeJobs",
            "/v1/listjobs" => "ListJobs",
            "/v1/canceljob" => "CancelJob",
            "/v1/terminatejob" => "TerminateJob",
            _ => null,
        };
        if (operation is null || request.Method != "POST")
        {
            return new StubAnswer(404, """{"message":"no such operation"}""", new Dictionary<string, string> { ["x-amzn-ErrorType"] = "UnknownOperationException" });
        }

        Calls.Enqueue((operation, request.Body));
        if (request.Header("Authorization") is not { } auth || !auth.StartsWith("AWS4-HMAC-SHA256 Credential=", StringComparison.Ordinal) || !auth.Contains("/batch/aws4_request", StringComparison.Ordinal))
        {
            return StubAnswer.Error(403, "UnrecognizedClientException", "The security token included in the request is invalid.");
        }

        if (DenyAccess)
        {
            return StubAnswer.Error(403, "AccessDeniedException",
                $"User: arn:aws:sts::123456789012:assumed-role/batchrunner/controller is not authorized to perform: batch:{operation}");
        }

        await Task.Yield();
        var body = JsonNode.Parse(request.Body)!.AsObject();
        lock (_gate)
        {
            try
            {
                return operation switch
                {
                    "RegisterJobDefinition" => Register(body),
                    "DescribeJobDefinitions" => DescribeDefinitions(body),
                    "SubmitJob" => Submit(body),
                    "DescribeJobs" => Describe(body),
                    "ListJobs" => List(body),
                    _ => Stop(body, operation == "TerminateJob"),
                };
            }
            catch (ClientError e)
            {
                return StubAnswer.Error(400, "ClientException", e.Message);
            }
        }
    }

    private StubAnswer Register(JsonObject body)
    {
        var name = Str(body, "jobDefinitionName") ?? throw new ClientError("jobDefinitionName is required");
        Check(NamePattern.IsMatch(name), "Job definition name is invalid");
        var container = body["containerProperties"]?.AsObject() ?? throw new ClientError("containerProperties is required for a container job definition");
        var fargate = body["platformCapabilities"]?.AsArray().Any(p => p!.GetValue<string>() == "FARGATE") == true;
        Check(fargate, "this stub serves Fargate job definitions only");
        Check(Str(container, "executionRoleArn") is { Length: > 0 }, "Fargate job definitions require an executionRoleArn");
        var resources = container["resourceRequirements"]!.AsArray().ToDictionary(r => Str(r!.AsObject(), "type")!, r => Str(r!.AsObject(), "value")!);
        Check(resources.ContainsKey("VCPU") && resources.ContainsKey("MEMORY"), "Fargate needs VCPU and MEMORY resource requirements");
        var revisions = _definitions.TryGetValue(name, out var list) ? list : _definitions[name] = [];
        var revision = revisions.Count + 1;
        var arn = $"arn:aws:batch:us-east-1:123456789012:job-definition/{name}:{revision}";
        var definition = new JsonObject
        {
            ["jobDefinitionName"] = name, ["jobDefinitionArn"] = arn, ["revision"] = revision, ["status"] = "ACTIVE", ["type"] = "container",
            ["containerProperties"] = container.DeepClone(),
        };
        revisions.Add(definition);
        return Ok(new JsonObject { ["jobDefinitionName"] = name, ["jobDefinitionArn"] = arn, ["revision"] = revision });
    }

    private StubAnswer DescribeDefinitions(JsonObject body)
    {
        var name = Str(body, "jobDefinitionName");
        var status = Str(body, "status");
        var found = _definitions.Where(d => name is null || d.Key == name).SelectMany(d => d.Value)
            .Where(d => status is null || Str(d, "status") == status).Select(d => (JsonNode)d.DeepClone()).ToArray();
        return Ok(new JsonObject { ["jobDefinitions"] = new JsonArray(found) });
    }

    private StubAnswer Submit(JsonObject body)
    {
        if (ThrottleSubmits > 0)
        {
            ThrottleSubmits--;
            Throttled++;
            return StubAnswer.Error(429, "TooManyRequestsException", "Too Many Requests");
        }

        if (SubmitsPerSecond > 0)
        {
            var now = DateTimeOffset.UtcNow;
            _submitTokens = double.IsNaN(_submitTokens) ? SubmitsPerSecond
                : Math.Min(SubmitsPerSecond, _submitTokens + ((now - _submitRefilled).TotalSeconds * SubmitsPerSecond));
            _submitRefilled = now;
            if (_submitTokens < 1)
            {
                Throttled++;
                return StubAnswer.Error(429, "TooManyRequestsException", "Too Many Requests");
            }

            _submitTokens--;
        }

        var name = Str(body, "jobName")!;
        Check(NamePattern.IsMatch(name), $"Job name {name} is invalid: up to 128 letters, numbers, hyphens and underscores, starting with a letter or number");
        var queue = Str(body, "jobQueue")!;
        Check(Queues.Contains(queue) || Queues.Any(q => queue.EndsWith("job-queue/" + q, StringComparison.Ordinal)), $"JobQueue {queue} not found");
        var definition = Str(body, "jobDefinition")!;
        Check(_definitions.Values.SelectMany(d => d).Any(d => Str(d, "jobDefinitionArn") == definition || Str(d, "jobDefinitionName") == definition), $"Job definition {definition} not found");
        var size = body["arrayProperties"]?["size"]?.GetValue<int>();
        Check(size is null or (>= 2 and <= 10_000), "Array properties size must be between 2 and 10000");
        var attempts = body["retryStrategy"]?["attempts"]?.GetValue<int>() ?? 1;
        Check(attempts is >= 1 and <= 10, "Retry strategy attempts must be between 1 and 10");
        var timeout = body["timeout"]?["attemptDurationSeconds"]?.GetValue<int>();
        Check(timeout is null or >= 60, "The minimum attemptDurationSeconds is 60 seconds");
        var offsetText = body["containerOverrides"]?["environment"]?.AsArray().FirstOrDefault(e => Str(e!.AsObject(), "name") == "BATCHRUNNER_INDEX_OFFSET") is { } offsetNode
            ? Str(offsetNode.AsObject(), "value") : "0";
        var listed = body["containerOverrides"]?["environment"]?.AsArray().FirstOrDefault(e => Str(e!.AsObject(), "name") == "BATCHRUNNER_INDEXES") is { } listedNode
            ? Core.Runs.IndexRanges.Parse(Str(listedNode.AsObject(), "value")) : null;
        Check(listed is null || listed.Count == (size ?? 1), "BATCHRUNNER_INDEXES lists as many indexes as the job has children");
        var id = $"{Interlocked.Increment(ref _nextId):D4}0000-aaaa-bbbb-cccc-000000000000";
        var job = new StubJob
        {
            Id = id, Name = name, Queue = queue, Definition = definition, Size = size ?? 1, IsArray = size is not null,
            Offset = int.Parse(offsetText!, CultureInfo.InvariantCulture), Attempts = attempts, Request = body.DeepClone().AsObject(), Listed = listed,
        };
        job.Children.AddRange(Enumerable.Range(0, job.Size).Select(i => new StubChild { Index = i }));
        _jobs.Add(job);
        return Ok(new JsonObject { ["jobArn"] = "arn:aws:batch:us-east-1:123456789012:job/" + id, ["jobName"] = name, ["jobId"] = id });
    }

    private StubAnswer Describe(JsonObject body)
    {
        var ids = body["jobs"]!.AsArray().Select(j => j!.GetValue<string>()).ToList();
        Check(ids.Count <= 100, "1 validation error detected: Value at 'jobs' failed to satisfy constraint: Member must have length less than or equal to 100");
        if (AdvanceOnDescribe)
        {
            foreach (var job in _jobs.Where(j => ids.Contains(j.Id)))
            {
                foreach (var child in job.Children)
                {
                    Step(job, child);
                }
            }
        }

        var details = new JsonArray();
        foreach (var id in ids)
        {
            if (_jobs.FirstOrDefault(j => j.Id == id) is { } job)
            {
                details.Add(Detail(job));
            }
        }

        return Ok(new JsonObject { ["jobs"] = details });
    }

    private static JsonObject Detail(StubJob job)
    {
        var status = job.Status;
        var detail = new JsonObject
        {
            ["jobArn"] = "arn:aws:batch:us-east-1:123456789012:job/" + job.Id, ["jobName"] = job.Name, ["jobId"] = job.Id,
            ["jobQueue"] = job.Queue, ["status"] = status, ["jobDefinition"] = job.Definition, ["createdAt"] = 1_700_000_000_000L, ["startedAt"] = 1_700_000_001_000L,
        };
        if (job.TerminatedReason is not null)
        {
            detail["statusReason"] = job.TerminatedReason;
        }

        if (job.IsArray)
        {
            var summary = new JsonObject();
            foreach (var group in job.Children.GroupBy(c => c.Status))
            {
                summary[group.Key] = group.Count();
            }

            detail["arrayProperties"] = new JsonObject { ["statusSummary"] = summary, ["size"] = job.Size };
            if (Finished(status) && job.TerminatedReason is null)
            {
                detail["statusReason"] = status == "FAILED" ? "Array Child Job failed" : "Array Child Job succeeded";
            }
        }
        else
        {
            var child = job.Children[0];
            if (child.StatusReason is not null && job.TerminatedReason is null)
            {
                detail["statusReason"] = child.StatusReason;
            }

            if (child.ExitCode is { } code)
            {
                detail["container"] = new JsonObject { ["exitCode"] = code };
            }
        }

        return detail;
    }

    private StubAnswer List(JsonObject body)
    {
        IEnumerable<JsonObject> found;
        var status = Str(body, "jobStatus") ?? "RUNNING";
        if (Str(body, "arrayJobId") is { } parentId)
        {
            var parent = _jobs.FirstOrDefault(j => j.Id == parentId && j.IsArray) ?? throw new ClientError($"Array job {parentId} not found");
            found = parent.Children.Where(c => c.Status == status).Select(c => new JsonObject
            {
                ["jobId"] = $"{parent.Id}:{c.Index}", ["jobName"] = parent.Name, ["status"] = c.Status, ["statusReason"] = c.StatusReason,
                ["arrayProperties"] = new JsonObject { ["index"] = c.Index },
                ["container"] = c.ExitCode is { } code ? new JsonObject { ["exitCode"] = code } : null,
            });
        }
        else
        {
            var queue = Str(body, "jobQueue") ?? throw new ClientError("jobQueue, arrayJobId or multiNodeJobId is required");
            Check(Queues.Contains(queue) || Queues.Any(q => queue.EndsWith("job-queue/" + q, StringComparison.Ordinal)), $"JobQueue {queue} not found");
            var jobs = _jobs.Where(j => j.Queue == queue);
            if (body["filters"] is JsonArray { Count: > 0 } filters)
            {
                var filter = filters[0]!.AsObject();
                Check(Str(filter, "name") == "JOB_NAME", "this stub filters by JOB_NAME only");
                var value = filter["values"]!.AsArray()[0]!.GetValue<string>();
                jobs = value.EndsWith('*')
                    ? jobs.Where(j => j.Name.StartsWith(value[..^1], StringComparison.OrdinalIgnoreCase))
                    : jobs.Where(j => string.Equals(j.Name, value, StringComparison.OrdinalIgnoreCase));
            }
            else
            {
                jobs = jobs.Where(j => j.Status == status);
            }

            found = jobs.OrderByDescending(j => j.Id, StringComparer.Ordinal).Select(j => new JsonObject
            {
                ["jobId"] = j.Id, ["jobName"] = j.Name, ["status"] = j.Status,
                ["arrayProperties"] = j.IsArray ? new JsonObject { ["size"] = j.Size } : null,
            });
        }

        var all = found.ToList();
        var max = body["maxResults"]?.GetValue<int>() ?? 100;
        var from = Str(body, "nextToken") is { } token ? int.Parse(token, CultureInfo.InvariantCulture) : 0;
        var page = all.Skip(from).Take(max).ToArray();
        var answer = new JsonObject { ["jobSummaryList"] = new JsonArray(page) };
        if (from + max < all.Count)
        {
            answer["nextToken"] = (from + max).ToString(CultureInfo.InvariantCulture);
        }

        return Ok(answer);
    }

    private StubAnswer Stop(JsonObject body, bool terminate)
    {
        var id = Str(body, "jobId")!;
        Check(Str(body, "reason") is { Length: > 0 }, "reason is required");
        var job = _jobs.FirstOrDefault(j => j.Id == id) ?? throw new ClientError($"Job {id} not found");
        foreach (var child in job.Children.Where(c => !Finished(c.Status) && (terminate || Array.IndexOf(Flow, c.Status) < Array.IndexOf(Flow, "STARTING"))))
        {
            child.Status = "FAILED";
            child.StatusReason = (terminate ? "Terminated: " : "Cancelled: ") + Str(body, "reason");
        }

        job.TerminatedReason ??= (terminate ? "Terminated: " : "Cancelled: ") + Str(body, "reason");
        job.StoppedBy.Add(terminate ? "TerminateJob" : "CancelJob");
        return Ok(new JsonObject());
    }

    private static StubAnswer Ok(JsonObject body)
    {
        var headers = new Dictionary<string, string> { ["x-amzn-RequestId"] = Guid.NewGuid().ToString() };
        return new StubAnswer(200, body.ToJsonString(), headers);
    }

    private static string? Str(JsonObject node, string name) => node[name] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new ClientError(message);
        }
    }

    public ValueTask DisposeAsync() => _http.DisposeAsync();

    private sealed class ClientError(string message) : Exception(message);
}

/// <summary>A job the stub holds: a plain job is an array of one child that is not an array.</summary>
public sealed class StubJob
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Queue { get; init; }
    public required string Definition { get; init; }
    public int Size { get; init; }
    public bool IsArray { get; init; }
    public int Offset { get; init; }

    /// <summary>A rerun's job: the indexes its children run, child i the i-th (as the wrapper reads BATCHRUNNER_INDEXES).</summary>
    public IReadOnlyList<int>? Listed { get; init; }

    /// <summary>The sweep index child <paramref name="child"/> runs.</summary>
    public int IndexOf(int child) => Listed is { } listed ? listed[child] : Offset + child;

    public int Attempts { get; init; }
    public required JsonObject Request { get; init; }
    public List<StubChild> Children { get; } = [];
    public string? TerminatedReason { get; set; }
    public List<string> StoppedBy { get; } = [];

    /// <summary>As AWS derives an array parent's status from its children.</summary>
    public string Status
    {
        get
        {
            if (Children.All(c => c.Status == "SUCCEEDED"))
            {
                return "SUCCEEDED";
            }

            if (Children.All(c => c.Status is "SUCCEEDED" or "FAILED"))
            {
                return "FAILED";
            }

            if (!IsArray)
            {
                return Children[0].Status;
            }

            return Children.Any(c => c.Status is "RUNNING" or "STARTING" or "SUCCEEDED" or "FAILED") ? "RUNNING" : Children.All(c => c.Status == "SUBMITTED") ? "SUBMITTED" : "PENDING";
        }
    }
}

public sealed class StubChild
{
    public int Index { get; init; }
    public string Status { get; set; } = "SUBMITTED";
    public int Attempt { get; set; } = 1;
    public int? ExitCode { get; set; }
    public string? StatusReason { get; set; }
}
