using System.Globalization;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace BatchRunner.Local.Intake;

/// <summary>Where a submitted BatchJob stands on this machine.</summary>
public enum SubmissionState
{
    /// <summary>Recorded, not started yet (or to be started again after a restart or a busy run).</summary>
    Pending,

    /// <summary>Started; a runner that died leaves it here, and the next one resumes it.</summary>
    Running,

    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>A BatchJob to record: its key, its content hash and canonical document, and where it came from.</summary>
public sealed record Submission(string Namespace, string Name, string ContentHash, string Document, string? Source);

/// <summary>A recorded submission and its progress.</summary>
public sealed record SubmissionRecord(
    long Sequence,
    string Namespace,
    string Name,
    string ContentHash,
    string Document,
    string? Source,
    SubmissionState State,
    string? RunId,
    string? Reason,
    DateTimeOffset ReceivedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    int Starts,
    DateTimeOffset? NotBefore)
{
    /// <summary>The latest rerun asked of it (the request as the queue carried it), or null.</summary>
    public string? RerunRequest { get; init; }

    /// <summary>The latest rerun request it answered (taken or refused): one that differs is still to answer.</summary>
    public string? RerunAnswered { get; init; }

    /// <summary>Reruns taken so far.</summary>
    public int Reruns { get; init; }

    /// <summary>While a rerun runs: its indexes (range notation), so a restarted runner follows the same rerun.</summary>
    public string? RerunIndexes { get; init; }

    /// <summary>A rerun request that has not been answered yet.</summary>
    public bool RerunPending => RerunRequest is not null && RerunRequest != RerunAnswered;

    public string Key => $"{Namespace}/{Name}";

    public bool IsFinished => State is SubmissionState.Succeeded or SubmissionState.Failed or SubmissionState.Cancelled;
}

public enum RecordOutcome
{
    /// <summary>Recorded now.</summary>
    Created,

    /// <summary>Recorded before with the same content hash: nothing changed.</summary>
    AlreadyRecorded,

    /// <summary>Recorded before with another content hash: nothing changed, and this one is refused.</summary>
    Conflict,
}

/// <summary>What recording a submission did; for a conflict, the hash that is there.</summary>
public sealed record RecordResult(RecordOutcome Outcome, string? ExistingContentHash = null);

/// <summary>
/// The local intake's durable record of submitted BatchJobs: <c>submissions.db</c> (SQLite, WAL) under the store
/// root, one row per namespace and name. Recording is idempotent: the same key with the same content hash is
/// already recorded, with another hash a conflict. A record is on disk (<c>synchronous=FULL</c>: it survives a
/// power cut, not only a killed process) before <see cref="RecordAsync"/> returns, because the caller deletes the
/// request's queue message next. Concurrent records are committed together, so that guarantee costs one fsync
/// per group rather than per job.
/// </summary>
public sealed class SubmissionStore : IAsyncDisposable, IDisposable
{
    public const string FileName = "submissions.db";
    private const int MaxGroup = 256;

    private readonly SqliteConnection _writer;
    private readonly SqliteConnection _reader;
    private readonly Lock _readerGate = new();
    private readonly TimeProvider _time;
    private readonly Channel<PendingRecord> _queue = Channel.CreateUnbounded<PendingRecord>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _committer;
    private TaskCompletionSource _recorded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    private SubmissionStore(SqliteConnection writer, SqliteConnection reader, TimeProvider time)
    {
        _writer = writer;
        _reader = reader;
        _time = time;
        _committer = Task.Run(CommitLoopAsync);
    }

    public string Path => _writer.DataSource;

    public static SubmissionStore Open(string storeRoot, TimeProvider? time = null)
    {
        Directory.CreateDirectory(storeRoot);
        var path = System.IO.Path.Combine(storeRoot, FileName);
        var writer = Connect(path);
        Execute(writer, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS submissions (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                namespace TEXT NOT NULL,
                name TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                document TEXT NOT NULL,
                source TEXT,
                state TEXT NOT NULL,
                run_id TEXT,
                reason TEXT,
                received_at TEXT NOT NULL,
                started_at TEXT,
                finished_at TEXT,
                starts INTEGER NOT NULL DEFAULT 0,
                not_before TEXT,
                UNIQUE (namespace, name));
            CREATE INDEX IF NOT EXISTS submissions_unfinished ON submissions (state, seq);
            """);
        // Columns added after the first release: a store written before gains them, empty.
        foreach (var column in new[] { "rerun_request TEXT", "rerun_answered TEXT", "reruns INTEGER NOT NULL DEFAULT 0", "rerun_indexes TEXT" })
        {
            using var probe = writer.CreateCommand();
            probe.CommandText = $"SELECT count(*) FROM pragma_table_info('submissions') WHERE name = '{column.Split(' ')[0]}'";
            if ((long)probe.ExecuteScalar()! == 0)
            {
                Execute(writer, $"ALTER TABLE submissions ADD COLUMN {column}");
            }
        }

        return new SubmissionStore(writer, Connect(path), time ?? TimeProvider.System);
    }

    /// <summary>Records the submission durably (see the class remarks); throws when the database cannot be written.</summary>
    public Task<RecordResult> RecordAsync(Submission submission, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var pending = new PendingRecord(submission, new TaskCompletionSource<RecordResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        ObjectDisposedException.ThrowIf(!_queue.Writer.TryWrite(pending), this);

        // Cancelling stops the wait, not the write: a record in the group being committed is committed.
        return pending.Result.Task.WaitAsync(cancellation);
    }

    /// <summary>Completes when a submission is recorded after this call, or after <paramref name="timeout"/>.</summary>
    public async Task WaitForRecordAsync(TimeSpan timeout, CancellationToken cancellation)
    {
        var recorded = Volatile.Read(ref _recorded).Task;
        await Task.WhenAny(recorded, Task.Delay(timeout, _time, cancellation)).ConfigureAwait(false);
        cancellation.ThrowIfCancellationRequested();
    }

    public SubmissionRecord? Find(string ns, string name) =>
        Query("WHERE namespace = $ns AND name = $name", ("$ns", ns), ("$name", name)) is [var record] ? record : null;

    /// <summary>Every submission, oldest first.</summary>
    public IReadOnlyList<SubmissionRecord> List() => Query("");

    /// <summary>Unfinished submissions that may start now, oldest first, leaving out the keys given (running here already).</summary>
    public IReadOnlyList<SubmissionRecord> Runnable(int limit, IReadOnlyCollection<string> excludeKeys)
    {
        var now = Format(_time.GetUtcNow());
        return Query(
                "WHERE (state IN ('Pending', 'Running') OR rerun_request IS NOT rerun_answered) AND (not_before IS NULL OR not_before <= $now) ORDER BY seq LIMIT $limit",
                ("$now", now), ("$limit", limit + excludeKeys.Count))
            .Where(r => !excludeKeys.Contains(r.Key))
            .Take(limit)
            .ToList();
    }

    public void MarkStarted(string ns, string name, string runId) => Update(
        "state = 'Running', run_id = $run, started_at = COALESCE(started_at, $now), starts = starts + 1, not_before = NULL, reason = NULL",
        ns, name, ("$run", runId), ("$now", Format(_time.GetUtcNow())));

    public void MarkFinished(string ns, string name, SubmissionState state, string? reason)
    {
        if (state is SubmissionState.Pending or SubmissionState.Running)
        {
            throw new ArgumentException($"{state} is not a finished state", nameof(state));
        }

        Update("state = $state, reason = $reason, finished_at = $now, rerun_indexes = NULL", ns, name,
            ("$state", state.ToString()), ("$reason", reason), ("$now", Format(_time.GetUtcNow())));
    }

    /// <summary>
    /// Records a rerun request for the submission (durably, before the queue message is deleted): false when it is the
    /// request recorded already (a redelivery). The runner answers it once the submission's run has finished.
    /// </summary>
    public bool RequestRerun(string ns, string name, string request)
    {
        if (Find(ns, name)?.RerunRequest == request)
        {
            return false;
        }

        Update("rerun_request = $request", ns, name, ("$request", request));
        return true;
    }

    /// <summary>The pending request is taken: its indexes run as rerun <paramref name="number"/> (the state goes to Running).</summary>
    public void TakeRerun(string ns, string name, string request, int number, string indexes) => Update(
        "state = 'Running', rerun_answered = $request, reruns = $number, rerun_indexes = $indexes, starts = 1, not_before = NULL, reason = NULL, finished_at = NULL",
        ns, name, ("$request", request), ("$number", number), ("$indexes", indexes));

    /// <summary>The pending request is refused, saying why; the submission keeps its outcome.</summary>
    public void RefuseRerun(string ns, string name, string request, string why) => Update(
        "rerun_answered = $request, reason = $why", ns, name, ("$request", request), ("$why", $"rerun {request} refused: {why}"));

    /// <summary>Back to pending, not to start before <paramref name="notBefore"/> (say, the run is busy in another process).</summary>
    public void Defer(string ns, string name, DateTimeOffset notBefore, string reason) => Update(
        "state = 'Pending', not_before = $notBefore, reason = $reason", ns, name, ("$notBefore", Format(notBefore)), ("$reason", reason));

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _committer.ConfigureAwait(false);
        _writer.Dispose();
        lock (_readerGate)
        {
            _reader.Dispose();
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task CommitLoopAsync()
    {
        var group = new List<PendingRecord>(MaxGroup);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // Everything that arrived while the last group was being committed goes in this one.
            while (group.Count < MaxGroup && _queue.Reader.TryRead(out var pending))
            {
                group.Add(pending);
            }

            try
            {
                var results = CommitGroup(group);
                for (var i = 0; i < group.Count; i++)
                {
                    group[i].Result.TrySetResult(results[i]);
                }

                if (results.Any(r => r.Outcome == RecordOutcome.Created))
                {
                    Interlocked.Exchange(ref _recorded, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                }
            }
            catch (Exception e)
            {
                foreach (var pending in group)
                {
                    pending.Result.TrySetException(e);
                }
            }

            group.Clear();
        }
    }

    private List<RecordResult> CommitGroup(List<PendingRecord> group)
    {
        var results = new List<RecordResult>(group.Count);
        var now = Format(_time.GetUtcNow());
        using var transaction = _writer.BeginTransaction();
        using var insert = _writer.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = """
            INSERT INTO submissions (namespace, name, content_hash, document, source, state, received_at)
            VALUES ($ns, $name, $hash, $document, $source, 'Pending', $now)
            ON CONFLICT (namespace, name) DO NOTHING
            """;
        var ns = insert.Parameters.Add("$ns", SqliteType.Text);
        var name = insert.Parameters.Add("$name", SqliteType.Text);
        var hash = insert.Parameters.Add("$hash", SqliteType.Text);
        var document = insert.Parameters.Add("$document", SqliteType.Text);
        var source = insert.Parameters.Add("$source", SqliteType.Text);
        insert.Parameters.AddWithValue("$now", now);
        using var existing = _writer.CreateCommand();
        existing.Transaction = transaction;
        existing.CommandText = "SELECT content_hash FROM submissions WHERE namespace = $ns AND name = $name";
        var existingNs = existing.Parameters.Add("$ns", SqliteType.Text);
        var existingName = existing.Parameters.Add("$name", SqliteType.Text);

        foreach (var (submission, _) in group)
        {
            ns.Value = submission.Namespace;
            name.Value = submission.Name;
            hash.Value = submission.ContentHash;
            document.Value = submission.Document;
            source.Value = (object?)submission.Source ?? DBNull.Value;
            if (insert.ExecuteNonQuery() == 1)
            {
                results.Add(new RecordResult(RecordOutcome.Created));
                continue;
            }

            existingNs.Value = submission.Namespace;
            existingName.Value = submission.Name;
            var there = (string)existing.ExecuteScalar()!;
            results.Add(there == submission.ContentHash ? new RecordResult(RecordOutcome.AlreadyRecorded, there) : new RecordResult(RecordOutcome.Conflict, there));
        }

        transaction.Commit();
        return results;
    }

    private IReadOnlyList<SubmissionRecord> Query(string where, params (string Name, object? Value)[] parameters)
    {
        lock (_readerGate)
        {
            using var command = _reader.CreateCommand();
            command.CommandText = $"""
                SELECT seq, namespace, name, content_hash, document, source, state, run_id, reason, received_at, started_at,
                       finished_at, starts, not_before, rerun_request, rerun_answered, reruns, rerun_indexes
                FROM submissions {where}{(where.Contains("ORDER BY", StringComparison.Ordinal) ? "" : " ORDER BY seq")}
                """;
            foreach (var (parameter, value) in parameters)
            {
                command.Parameters.AddWithValue(parameter, value ?? DBNull.Value);
            }

            using var row = command.ExecuteReader();
            var records = new List<SubmissionRecord>();
            while (row.Read())
            {
                records.Add(new SubmissionRecord(
                    row.GetInt64(0), row.GetString(1), row.GetString(2), row.GetString(3), row.GetString(4),
                    row.IsDBNull(5) ? null : row.GetString(5), Enum.Parse<SubmissionState>(row.GetString(6)),
                    row.IsDBNull(7) ? null : row.GetString(7), row.IsDBNull(8) ? null : row.GetString(8), Parse(row.GetString(9))!.Value,
                    Parse(row.IsDBNull(10) ? null : row.GetString(10)), Parse(row.IsDBNull(11) ? null : row.GetString(11)),
                    row.GetInt32(12), Parse(row.IsDBNull(13) ? null : row.GetString(13)))
                {
                    RerunRequest = row.IsDBNull(14) ? null : row.GetString(14),
                    RerunAnswered = row.IsDBNull(15) ? null : row.GetString(15),
                    Reruns = row.GetInt32(16),
                    RerunIndexes = row.IsDBNull(17) ? null : row.GetString(17),
                });
            }

            return records;
        }
    }

    private void Update(string set, string ns, string name, params (string Name, object? Value)[] parameters)
    {
        lock (_readerGate)
        {
            using var command = _reader.CreateCommand();
            command.CommandText = $"UPDATE submissions SET {set} WHERE namespace = $ns AND name = $name";
            command.Parameters.AddWithValue("$ns", ns);
            command.Parameters.AddWithValue("$name", name);
            foreach (var (parameter, value) in parameters)
            {
                command.Parameters.AddWithValue(parameter, value ?? DBNull.Value);
            }

            if (command.ExecuteNonQuery() != 1)
            {
                throw new InvalidOperationException($"no submission {ns}/{name}");
            }
        }
    }

    private static SqliteConnection Connect(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
        }.ToString());
        connection.Open();
        Execute(connection, "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;");
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static string Format(DateTimeOffset time) => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset? Parse(string? text) =>
        text is null ? null : DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    private sealed record PendingRecord(Submission Submission, TaskCompletionSource<RecordResult> Result);
}
