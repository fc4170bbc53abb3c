using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRunner.Aws.Tests.Protocol;

namespace BatchRunner.Athena.Tests.Stub;

/// <summary>
/// A stand-in for Athena on 127.0.0.1: the JSON 1.1 API's StartQueryExecution, GetQueryExecution, GetQueryResults
/// and StopQueryExecution, signed requests only. Queries really run (with <see cref="DuckAthena"/> over a local copy
/// of the buckets) after a delay, in the background, so callers poll; results page as Athena's do (the header
/// first, at most MaxResults rows a page, an opaque NextToken); failures carry Athena's reasons; every
/// <see cref="ThrottleEvery"/>th call is throttled.
/// </summary>
internal sealed class AthenaStub : IAsyncDisposable
{
    private readonly DuckAthena _engine;
    private readonly ConcurrentDictionary<string, Execution> _executions = new();
    private readonly ConcurrentDictionary<string, string> _tokens = new();
    private int _calls;
    private int _throttled;
    private StubHttpServer _server = null!;

    private AthenaStub(IReadOnlyDictionary<string, string> buckets) => _engine = new DuckAthena(buckets);

    /// <summary>Every Nth call answers ThrottlingException (0: never).</summary>
    public int ThrottleEvery { get; set; }

    /// <summary>How long a query stays QUEUED/RUNNING before it runs.</summary>
    public TimeSpan QueryDelay { get; set; } = TimeSpan.FromMilliseconds(30);

    /// <summary>Workgroups whose configuration has a result location (so a query may leave it out).</summary>
    public HashSet<string> WorkGroupsWithOutput { get; } = new(StringComparer.Ordinal);

    public Uri Url => _server.Url;

    /// <summary>How many calls were answered ThrottlingException.</summary>
    public int Throttled => Volatile.Read(ref _throttled);

    /// <summary>Every request received (target, body), throttled ones included.</summary>
    public ConcurrentQueue<(string Operation, string Body)> Calls { get; } = new();

    /// <summary>Queries started, and the distinct idempotency tokens they were started with.</summary>
    public (int Queries, int Tokens) Started => (_executions.Count, _tokens.Count);

    public IReadOnlyCollection<string> Stopped => _executions.Values.Where(e => e.StopRequested).Select(e => e.Id).ToList();

    public static async Task<AthenaStub> StartAsync(IReadOnlyDictionary<string, string> buckets)
    {
        var stub = new AthenaStub(buckets);
        stub._server = await StubHttpServer.StartAsync(stub.HandleAsync).ConfigureAwait(false);
        return stub;
    }

    private sealed class Execution(string id, string sql, string? database, string workGroup, string? output)
    {
        public string Id { get; } = id;
        public string Sql { get; } = sql;
        public string? Database { get; } = database;
        public string WorkGroup { get; } = workGroup;
        public string? Output { get; } = output;
        public string State { get; set; } = "QUEUED";
        public string? Reason { get; set; }
        public int? ErrorType { get; set; }
        public StubResult? Result { get; set; }
        public bool StopRequested { get; set; }
        public DateTimeOffset Submitted { get; } = DateTimeOffset.UtcNow;
        public DateTimeOffset? Completed { get; set; }
    }

    private async Task<StubAnswer> HandleAsync(ReceivedRequest request)
    {
        var target = request.Header("X-Amz-Target") ?? "";
        var operation = target.StartsWith("AmazonAthena.", StringComparison.Ordinal) ? target["AmazonAthena.".Length..] : target;
        Calls.Enqueue((operation, request.Body));
        if (request.Header("Content-Type") != "application/x-amz-json-1.1")
        {
            return StubAnswer.Error(400, "SerializationException", "expected application/x-amz-json-1.1");
        }

        if (request.Header("Authorization") is not { } authorization || !authorization.Contains("/athena/aws4_request", StringComparison.Ordinal))
        {
            return StubAnswer.Error(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
        }

        if (ThrottleEvery > 0 && Interlocked.Increment(ref _calls) % ThrottleEvery == 0)
        {
            Interlocked.Increment(ref _throttled);
            return StubAnswer.Error(400, "ThrottlingException", "Rate exceeded");
        }

        var body = JsonNode.Parse(request.Body)!.AsObject();
        return operation switch
        {
            "StartQueryExecution" => Start(body),
            "GetQueryExecution" => WithExecution(body, Describe),
            "GetQueryResults" => WithExecution(body, e => Results(e, body)),
            "StopQueryExecution" => WithExecution(body, Stop),
            _ => StubAnswer.Error(400, "UnknownOperationException", $"unknown operation {target}"),
        };
    }

    private StubAnswer Start(JsonObject body)
    {
        var sql = (string?)body["QueryString"];
        if (string.IsNullOrEmpty(sql))
        {
            return InvalidRequest("QueryString is required");
        }

        var token = (string?)body["ClientRequestToken"];
        if (token is not null && _tokens.TryGetValue(token, out var earlier))
        {
            // Idempotent: the same token starts nothing new.
            return Json(new JsonObject { ["QueryExecutionId"] = earlier });
        }

        var workGroup = (string?)body["WorkGroup"] ?? "primary";
        var output = (string?)body["ResultConfiguration"]?["OutputLocation"];
        if (output is null && !WorkGroupsWithOutput.Contains(workGroup))
        {
            return InvalidRequest("No output location provided. An output location is required either through the Workgroup result configuration setting or as an API input.");
        }

        var execution = new Execution(Guid.NewGuid().ToString("D"), sql, (string?)body["QueryExecutionContext"]?["Database"], workGroup, output);
        _executions[execution.Id] = execution;
        if (token is not null)
        {
            _tokens[token] = execution.Id;
        }

        _ = Task.Run(async () =>
        {
            await Task.Delay(QueryDelay / 2).ConfigureAwait(false);
            lock (execution)
            {
                if (execution.State == "QUEUED")
                {
                    execution.State = "RUNNING";
                }
            }

            await Task.Delay(QueryDelay / 2).ConfigureAwait(false);
            StubResult? result = null;
            string? reason = null;
            int? type = null;
            try
            {
                result = _engine.Execute(execution.Sql, execution.Database);
            }
            catch (StubQueryException e)
            {
                reason = e.Message;
                type = e.ErrorType;
            }

            lock (execution)
            {
                if (execution.State != "RUNNING")
                {
                    return;
                }

                execution.Result = result;
                execution.Reason = reason;
                execution.ErrorType = type;
                execution.State = result is null ? "FAILED" : "SUCCEEDED";
                execution.Completed = DateTimeOffset.UtcNow;
            }
        });
        return Json(new JsonObject { ["QueryExecutionId"] = execution.Id });
    }

    private StubAnswer Describe(Execution e)
    {
        lock (e)
        {
            var status = new JsonObject
            {
                ["State"] = e.State,
                ["SubmissionDateTime"] = e.Submitted.ToUnixTimeMilliseconds() / 1000.0,
            };
            if (e.Completed is { } completed)
            {
                status["CompletionDateTime"] = completed.ToUnixTimeMilliseconds() / 1000.0;
            }

            if (e.State == "FAILED")
            {
                status["StateChangeReason"] = e.Reason;
                status["AthenaError"] = new JsonObject { ["ErrorCategory"] = 2, ["ErrorType"] = e.ErrorType, ["Retryable"] = false, ["ErrorMessage"] = e.Reason };
            }

            var execution = new JsonObject
            {
                ["QueryExecutionId"] = e.Id,
                ["Query"] = e.Sql,
                ["StatementType"] = e.Result?.StatementType ?? (e.Sql.TrimStart().StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) ? "DML" : "DDL"),
                ["ResultConfiguration"] = new JsonObject { ["OutputLocation"] = $"{(e.Output ?? "s3://workgroup-results/").TrimEnd('/')}/{e.Id}.csv" },
                ["QueryExecutionContext"] = e.Database is null ? new JsonObject() : new JsonObject { ["Database"] = e.Database },
                ["Status"] = status,
                ["WorkGroup"] = e.WorkGroup,
            };
            if (e.State is "SUCCEEDED" or "FAILED" or "CANCELLED")
            {
                execution["Statistics"] = new JsonObject
                {
                    ["EngineExecutionTimeInMillis"] = (long)QueryDelay.TotalMilliseconds,
                    ["DataScannedInBytes"] = e.Result?.BytesScanned ?? 0,
                    ["TotalExecutionTimeInMillis"] = (long)QueryDelay.TotalMilliseconds,
                };
            }

            return Json(new JsonObject { ["QueryExecution"] = execution });
        }
    }

    private static StubAnswer Results(Execution e, JsonObject body)
    {
        lock (e)
        {
            if (e.State != "SUCCEEDED")
            {
                return e.State == "FAILED"
                    ? InvalidRequest(e.Reason ?? "query failed")
                    : InvalidRequest($"Query has not yet finished. Current state: {e.State}");
            }
        }

        var max = (int?)body["MaxResults"] ?? 1000;
        if (max is < 1 or > 1000)
        {
            return InvalidRequest("MaxResults must be between 1 and 1000");
        }

        var result = e.Result!;
        // Row 0 is the header of a query with columns; NextToken is the next row's position, opaque to the caller.
        var header = result.Columns.Count > 0 ? 1 : 0;
        var total = result.Rows.Count + header;
        var from = body["NextToken"] is { } next ? int.Parse(Unwrap((string)next!), System.Globalization.CultureInfo.InvariantCulture) : 0;
        var rows = new JsonArray();
        for (var i = from; i < Math.Min(total, from + max); i++)
        {
            var values = header == 1 && i == 0 ? result.Columns.Select(c => (string?)c.Name).ToArray() : result.Rows[i - header];
            rows.Add(new JsonObject
            {
                ["Data"] = new JsonArray(values.Select(v => (JsonNode)(v is null ? new JsonObject() : new JsonObject { ["VarCharValue"] = v })).ToArray()),
            });
        }

        var answer = new JsonObject
        {
            ["UpdateCount"] = 0,
            ["ResultSet"] = new JsonObject
            {
                ["Rows"] = rows,
                ["ResultSetMetadata"] = new JsonObject
                {
                    ["ColumnInfo"] = new JsonArray(result.Columns.Select(c => (JsonNode)new JsonObject
                    {
                        ["CatalogName"] = "hive", ["SchemaName"] = "", ["TableName"] = "", ["Name"] = c.Name, ["Label"] = c.Name,
                        ["Type"] = c.Type, ["Precision"] = 0, ["Scale"] = 0, ["Nullable"] = "UNKNOWN", ["CaseSensitive"] = c.Type == "varchar",
                    }).ToArray()),
                },
            },
        };
        if (from + max < total)
        {
            answer["NextToken"] = Wrap((from + max).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return Json(answer);
    }

    private static StubAnswer Stop(Execution e)
    {
        lock (e)
        {
            e.StopRequested = true;
            if (e.State is "QUEUED" or "RUNNING")
            {
                e.State = "CANCELLED";
                e.Reason = "Query cancelled by user";
                e.Completed = DateTimeOffset.UtcNow;
            }
        }

        return Json(new JsonObject());
    }

    private StubAnswer WithExecution(JsonObject body, Func<Execution, StubAnswer> action)
    {
        var id = (string?)body["QueryExecutionId"];
        return id is not null && _executions.TryGetValue(id, out var execution)
            ? action(execution)
            : InvalidRequest($"QueryExecution {id} was not found");
    }

    private static StubAnswer InvalidRequest(string message) => new(400,
        new JsonObject { ["__type"] = "InvalidRequestException", ["AthenaErrorCode"] = "INVALID_INPUT", ["Message"] = message }.ToJsonString(),
        new Dictionary<string, string> { ["x-amzn-RequestId"] = Guid.NewGuid().ToString() });

    private static StubAnswer Json(JsonObject body) => StubAnswer.Ok(body.ToJsonString());

    private static string Wrap(string position) => Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(new { position, salt = "athena-stub" }));

    private static string Unwrap(string token) => JsonDocument.Parse(Convert.FromBase64String(token)).RootElement.GetProperty("position").GetString()!;

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync().ConfigureAwait(false);
        _engine.Dispose();
    }
}
