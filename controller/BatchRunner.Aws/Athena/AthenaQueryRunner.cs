using System.Globalization;
using BatchRunner.Aws.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRunner.Aws.Athena;

/// <summary>A finished Athena query: its columns, its rows (typed from Athena's column types) and what it cost.</summary>
public sealed record AthenaQueryResult(
    string QueryExecutionId,
    IReadOnlyList<string> Columns,
    IReadOnlyList<object?[]> Rows,
    long BytesScanned,
    long EngineMilliseconds);

/// <summary>A query Athena ran and failed or cancelled: its state and Athena's reason.</summary>
public sealed class AthenaQueryFailedException(string queryExecutionId, string state, string reason, int? errorCategory)
    : Exception($"Athena query {queryExecutionId} {state}: {reason}")
{
    public string QueryExecutionId { get; } = queryExecutionId;
    public string State { get; } = state;
    public string Reason { get; } = reason;

    /// <summary>1 system, 2 user (the query is wrong), 3 other.</summary>
    public int? ErrorCategory { get; } = errorCategory;
}

/// <summary>
/// Runs one statement on Athena as its API asks: start it (with an idempotency token, so a retried start does
/// not run it twice), poll its state with a growing interval until it ends, then page through its results
/// (1,000 rows a page; the first row of a SELECT's first page is its header). A cancelled caller stops the query
/// on Athena too, so it is not left running and billing.
/// </summary>
public sealed class AthenaQueryRunner(IAthenaApi api, AthenaOptions options, TimeProvider? time = null, ILogger<AthenaQueryRunner>? log = null)
{
    private const int PageSize = 1000;

    /// <summary>How long a running query's state may go unread (every look failing after its retries) before the wait gives up.</summary>
    internal static readonly TimeSpan PollOutageTolerance = TimeSpan.FromMinutes(2);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ILogger _log = log ?? NullLogger<AthenaQueryRunner>.Instance;

    /// <summary>Runs <paramref name="sql"/> in the configured database, or with no database (for CREATE DATABASE).</summary>
    public async Task<AthenaQueryResult> RunAsync(string sql, CancellationToken cancellation, bool inDatabase = true)
    {
        var request = new StartQueryExecutionRequest
        {
            QueryString = sql,
            ClientRequestToken = Guid.NewGuid().ToString("D"),
            QueryExecutionContext = inDatabase ? new QueryExecutionContext { Database = options.Database } : null,
            ResultConfiguration = string.IsNullOrEmpty(options.OutputLocation) ? null : new ResultConfiguration { OutputLocation = options.OutputLocation },
            WorkGroup = options.WorkGroup,
        };
        StartQueryExecutionResponse started;
        try
        {
            started = await api.StartQueryExecutionAsync(request, cancellation).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // The start may have reached Athena before the caller left: the same token names the same query, so
            // asking again gives its id (without starting another), and it is stopped.
            await StopStartedAsync(request).ConfigureAwait(false);
            throw;
        }

        var id = started.QueryExecutionId ?? throw new InvalidOperationException("Athena started a query without an id");
        _log.LogDebug("Started Athena query {QueryExecutionId} in {WorkGroup}", id, options.WorkGroup);

        QueryExecution execution;
        try
        {
            execution = await WaitAsync(id, cancellation).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            await StopAsync(id).ConfigureAwait(false);
            throw;
        }

        var statistics = execution.Statistics;
        var (columns, rows) = await ReadResultsAsync(id, execution.StatementType, cancellation).ConfigureAwait(false);
        return new AthenaQueryResult(id, columns, rows, statistics?.DataScannedInBytes ?? 0, statistics?.EngineExecutionTimeInMillis ?? 0);
    }

    private async Task<QueryExecution> WaitAsync(string id, CancellationToken cancellation)
    {
        var interval = options.PollInterval;
        var answered = _time.GetUtcNow();
        while (true)
        {
            QueryExecution execution;
            try
            {
                execution = (await api.GetQueryExecutionAsync(id, cancellation).ConfigureAwait(false)).QueryExecution
                    ?? throw new InvalidOperationException($"Athena answered no execution for query {id}");
                answered = _time.GetUtcNow();
            }
            catch (AwsServiceException e) when (e.IsRetryable && _time.GetUtcNow() - answered < PollOutageTolerance)
            {
                // The query runs on in Athena whatever happened to one look at it (the client already retried that look):
                // a blip costs a poll, not the query.
                _log.LogWarning("Athena query {QueryExecutionId}: its state could not be read ({Error}); looking again", id, e.Message);
                await Task.Delay(interval, _time, cancellation).ConfigureAwait(false);
                continue;
            }

            var state = execution.Status?.State;
            switch (state)
            {
                case "SUCCEEDED":
                    return execution;
                case "FAILED" or "CANCELLED":
                    var status = execution.Status!;
                    var reason = status.StateChangeReason ?? status.AthenaError?.ErrorMessage ?? "no reason given";
                    throw new AthenaQueryFailedException(id, state, reason, status.AthenaError?.ErrorCategory);
                case "QUEUED" or "RUNNING":
                    break;
                default:
                    throw new InvalidOperationException($"Athena query {id} is in an unknown state '{state}'");
            }

            await Task.Delay(interval, _time, cancellation).ConfigureAwait(false);
            interval = TimeSpan.FromTicks(Math.Min(options.MaxPollInterval.Ticks, (long)(interval.Ticks * 1.5)));
        }
    }

    private async Task StopStartedAsync(StartQueryExecutionRequest request)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), _time);
        try
        {
            var started = await api.StartQueryExecutionAsync(request, timeout.Token).ConfigureAwait(false);
            if (started.QueryExecutionId is { } id)
            {
                await StopAsync(id).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.LogWarning(e, "Could not find the Athena query started with token {ClientRequestToken} to stop it", request.ClientRequestToken);
        }
    }

    private async Task StopAsync(string id)
    {
        // The caller is gone; the stop itself must not be cancelled with it, but must not hang either.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), _time);
        try
        {
            await api.StopQueryExecutionAsync(id, timeout.Token).ConfigureAwait(false);
            _log.LogInformation("Stopped Athena query {QueryExecutionId}", id);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.LogWarning(e, "Could not stop Athena query {QueryExecutionId}; it may run on until Athena's timeout", id);
        }
    }

    private async Task<(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows)> ReadResultsAsync(
        string id, string? statementType, CancellationToken cancellation)
    {
        IReadOnlyList<ColumnInfo>? columns = null;
        var rows = new List<object?[]>();
        string? token = null;
        var first = true;
        do
        {
            var page = await api.GetQueryResultsAsync(
                new GetQueryResultsRequest { QueryExecutionId = id, NextToken = token, MaxResults = PageSize }, cancellation).ConfigureAwait(false);
            columns ??= page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? [];
            var pageRows = page.ResultSet?.Rows ?? [];
            // A SELECT's first row holds the column labels, not data (DDL and utility statements have none).
            var skip = first && statementType is null or "DML" && pageRows.Count > 0 && IsHeader(pageRows[0], columns) ? 1 : 0;
            foreach (var row in pageRows.Skip(skip))
            {
                var data = row.Data ?? [];
                var values = new object?[columns.Count];
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = i < data.Count ? Convert(data[i].VarCharValue, columns[i].Type) : null;
                }

                rows.Add(values);
            }

            first = false;
            token = page.NextToken;
        }
        while (!string.IsNullOrEmpty(token));

        return (columns.Select(c => c.Name).ToList(), rows);
    }

    private static bool IsHeader(ResultRow row, IReadOnlyList<ColumnInfo> columns) =>
        row.Data is { } data && data.Count == columns.Count && data.Select((d, i) => d.VarCharValue == columns[i].Name).All(x => x);

    /// <summary>Athena sends every value as text; its column type says what the text is.</summary>
    public static object? Convert(string? text, string type)
    {
        if (text is null)
        {
            return null;
        }

        var baseType = type.Split('(')[0].Trim().ToLowerInvariant();
        var invariant = CultureInfo.InvariantCulture;
        return baseType switch
        {
            "tinyint" or "smallint" or "integer" or "int" or "bigint" when long.TryParse(text, NumberStyles.Integer, invariant, out var l) => l,
            "double" or "real" or "float" => text switch
            {
                "NaN" => double.NaN,
                "Infinity" => double.PositiveInfinity,
                "-Infinity" => double.NegativeInfinity,
                _ when double.TryParse(text, NumberStyles.Float, invariant, out var d) => d,
                _ => text,
            },
            "decimal" when decimal.TryParse(text, NumberStyles.Number, invariant, out var m) => m,
            "boolean" when bool.TryParse(text, out var b) => b,
            "timestamp" when DateTime.TryParse(text, invariant, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t) => t,
            "date" when DateOnly.TryParse(text, invariant, out var date) => date,
            _ => text,
        };
    }
}
