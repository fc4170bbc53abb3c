using System.Globalization;
using BatchRunner.Core.Runs;
using Microsoft.Data.Sqlite;

namespace BatchRunner.Local.State;

/// <summary>A run as the embedded state knows it.</summary>
public sealed record RunRecord(
    string RunId,
    string Namespace,
    string Name,
    int Completions,
    RunPhase Phase,
    string? Reason,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    int Succeeded,
    int Failed,
    int? RunnerPid);

/// <summary>Where one index stands: its phase and the highest attempt number it has used.</summary>
public sealed record IndexRecord(int Index, IndexPhase Phase, int Attempts, string? LastReason);

/// <summary>An attempt's start (no outcome) or its end (an outcome and the index's phase after it).</summary>
public sealed record StateTransition(
    string RunId,
    int Index,
    int Attempt,
    DateTimeOffset StartedAt,
    int? Pid = null,
    long? PidStartTicks = null,
    AttemptOutcome? Outcome = null,
    IndexPhase IndexPhase = IndexPhase.Running,
    string? Reason = null,
    DateTimeOffset? FinishedAt = null,
    PointRecord? Point = null)
{
    public static StateTransition Started(string runId, int index, int attempt, int? pid, long? pidStartTicks, DateTimeOffset startedAt) =>
        new(runId, index, attempt, startedAt, pid, pidStartTicks);

    public static StateTransition Finished(
        string runId, int index, int attempt, AttemptOutcome outcome, IndexPhase indexPhase, string? reason, DateTimeOffset startedAt, DateTimeOffset finishedAt) =>
        new(runId, index, attempt, startedAt, Outcome: outcome, IndexPhase: indexPhase, Reason: reason, FinishedAt: finishedAt);
}

/// <summary>
/// A succeeded attempt as a point others may reuse: its key and fields (<see cref="Core.Runs.PointKey"/>) and the digest
/// of its output files when it finished, which a reuse checks first.
/// </summary>
public sealed record PointRecord(string Namespace, string Key, string Fields, string Digest, string BatchJob, string RunId, int Index, int Attempt);

/// <summary>An attempt that was recorded as started and never as finished: its runner died under it.</summary>
public sealed record UnfinishedAttempt(int Index, int Attempt, int? Pid, long? PidStartTicks, DateTimeOffset StartedAt);

public enum IndexPhase
{
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// <summary>
/// The embedded store of run state: one SQLite database under the store root, in WAL mode so that
/// <c>batchrunner status</c> reads while a run writes. Writes are durable against a killed process
/// (synchronous=NORMAL: a commit survives <c>kill -9</c>, though not a power cut). A running run's attempt
/// transitions come in groups through <see cref="GroupCommitWriter"/>.
/// </summary>
public sealed class RunStateStore : IDisposable
{
    public const string FileName = "state.db";

    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();

    // Hot-path writes reuse their prepared statements: re-parsing SQL was a measurable part of each index's cost.
    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal);
    private SqliteTransaction? _transaction;

    private RunStateStore(SqliteConnection connection) => _connection = connection;

    public static RunStateStore Open(string storeRoot)
    {
        Directory.CreateDirectory(storeRoot);
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(storeRoot, FileName),
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
        }.ToString());
        connection.Open();
        var store = new RunStateStore(connection);
        store.Execute("""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            PRAGMA busy_timeout = 10000;
            CREATE TABLE IF NOT EXISTS runs (
                run_id TEXT PRIMARY KEY,
                namespace TEXT NOT NULL,
                name TEXT NOT NULL,
                spec_json TEXT NOT NULL,
                completions INTEGER NOT NULL,
                phase TEXT NOT NULL,
                reason TEXT,
                created_at TEXT NOT NULL,
                started_at TEXT,
                finished_at TEXT,
                cancel_requested INTEGER NOT NULL DEFAULT 0,
                runner_pid INTEGER);
            CREATE INDEX IF NOT EXISTS runs_by_name ON runs (namespace, name);
            CREATE TABLE IF NOT EXISTS indexes (
                run_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                phase TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                last_reason TEXT,
                PRIMARY KEY (run_id, idx)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS points (
                namespace TEXT NOT NULL,
                point_key TEXT NOT NULL,
                fields TEXT NOT NULL,
                digest TEXT NOT NULL,
                batchjob TEXT NOT NULL,
                run_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                PRIMARY KEY (namespace, point_key, run_id, idx, attempt));
            CREATE TABLE IF NOT EXISTS attempts (
                run_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                pid INTEGER,
                pid_start_ticks INTEGER,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                outcome TEXT,
                PRIMARY KEY (run_id, idx, attempt)) WITHOUT ROWID;
            """);
        return store;
    }

    /// <summary>Records that a runner (this process) is working on the run now, creating the run if it is new.</summary>
    public RunRecord BeginInvocation(string runId, string ns, string name, string specJson, int completions, int runnerPid, DateTimeOffset now)
    {
        lock (_gate)
        {
            Execute("""
                INSERT INTO runs (run_id, namespace, name, spec_json, completions, phase, created_at, started_at, runner_pid)
                VALUES ($run, $ns, $name, $spec, $completions, 'Running', $now, $now, $pid)
                ON CONFLICT (run_id) DO UPDATE SET
                    phase = 'Running', reason = NULL, finished_at = NULL, cancel_requested = 0, runner_pid = $pid
                """,
                ("$run", runId), ("$ns", ns), ("$name", name), ("$spec", specJson), ("$completions", completions),
                ("$now", Format(now)), ("$pid", runnerPid));
        }

        return FindRun(runId) ?? throw new InvalidOperationException($"run {runId} vanished after it was written");
    }

    public RunRecord? FindRun(string runId) => QueryRuns("WHERE r.run_id = $run", ("$run", runId)).FirstOrDefault();

    /// <summary>Runs, newest first; optionally only those of one BatchJob name.</summary>
    public IReadOnlyList<RunRecord> ListRuns(string? name = null, string? ns = null) =>
        name is null
            ? QueryRuns("ORDER BY r.created_at DESC")
            : QueryRuns("WHERE r.name = $name AND ($ns IS NULL OR r.namespace = $ns) ORDER BY r.created_at DESC", ("$name", name), ("$ns", ns));

    public string? GetSpecJson(string runId)
    {
        lock (_gate)
        {
            using var command = Command("SELECT spec_json FROM runs WHERE run_id = $run", ("$run", runId));
            return command.ExecuteScalar() as string;
        }
    }

    public Dictionary<int, IndexRecord> LoadIndexes(string runId)
    {
        lock (_gate)
        {
            using var command = Command("SELECT idx, phase, attempts, last_reason FROM indexes WHERE run_id = $run", ("$run", runId));
            using var reader = command.ExecuteReader();
            var result = new Dictionary<int, IndexRecord>();
            while (reader.Read())
            {
                var index = reader.GetInt32(0);
                result[index] = new IndexRecord(index, Enum.Parse<IndexPhase>(reader.GetString(1)), reader.GetInt32(2), reader.IsDBNull(3) ? null : reader.GetString(3));
            }

            return result;
        }
    }

    /// <summary>Failed indexes of a run with the reason of their last attempt, in index order.</summary>
    public IReadOnlyList<IndexRecord> FailedIndexes(string runId, int limit) =>
        LoadIndexes(runId).Values.Where(i => i.Phase == IndexPhase.Failed).OrderBy(i => i.Index).Take(limit).ToList();

    public IReadOnlyList<UnfinishedAttempt> UnfinishedAttempts(string runId)
    {
        lock (_gate)
        {
            using var command = Command(
                "SELECT idx, attempt, pid, pid_start_ticks, started_at FROM attempts WHERE run_id = $run AND finished_at IS NULL",
                ("$run", runId));
            using var reader = command.ExecuteReader();
            var result = new List<UnfinishedAttempt>();
            while (reader.Read())
            {
                result.Add(new UnfinishedAttempt(
                    reader.GetInt32(0),
                    reader.GetInt32(1),
                    reader.IsDBNull(2) ? null : reader.GetInt32(2),
                    reader.IsDBNull(3) ? null : reader.GetInt64(3),
                    Parse(reader.GetString(4))));
            }

            return result;
        }
    }

    /// <summary>One commit: the attempt exists, with the process that runs it, and the index is running.</summary>
    public void RecordAttemptStarted(string runId, int index, int attempt, int? pid, long? pidStartTicks, DateTimeOffset startedAt) =>
        Record([StateTransition.Started(runId, index, attempt, pid, pidStartTicks, startedAt)]);

    /// <summary>One commit: the attempt's outcome and the index's phase after it.</summary>
    public void RecordAttemptFinished(
        string runId, int index, int attempt, AttemptOutcome outcome, IndexPhase indexPhase, string? reason, DateTimeOffset startedAt, DateTimeOffset finishedAt) =>
        Record([StateTransition.Finished(runId, index, attempt, outcome, indexPhase, reason, startedAt, finishedAt)]);

    /// <summary>One commit for every transition, applied in order.</summary>
    public void Record(IReadOnlyList<StateTransition> transitions)
    {
        lock (_gate)
        {
            using var transaction = Begin();
            foreach (var transition in transitions)
            {
                Apply(transition);
            }

            transaction.Commit();
        }
    }

    private void Apply(StateTransition t)
    {
        if (t.Outcome is not { } outcome)
        {
            Execute("""
                INSERT OR REPLACE INTO attempts (run_id, idx, attempt, pid, pid_start_ticks, started_at)
                VALUES ($run, $idx, $attempt, $pid, $ticks, $started)
                """,
                ("$run", t.RunId), ("$idx", t.Index), ("$attempt", t.Attempt), ("$pid", t.Pid), ("$ticks", t.PidStartTicks), ("$started", Format(t.StartedAt)));
            UpsertIndex(t.RunId, t.Index, IndexPhase.Running, t.Attempt, null);
            return;
        }

        // An attempt whose process never started was never recorded as started: insert it here.
        Execute("""
            INSERT INTO attempts (run_id, idx, attempt, started_at, finished_at, outcome)
            VALUES ($run, $idx, $attempt, $started, $finished, $outcome)
            ON CONFLICT (run_id, idx, attempt) DO UPDATE SET finished_at = $finished, outcome = $outcome
            """,
            ("$run", t.RunId), ("$idx", t.Index), ("$attempt", t.Attempt), ("$started", Format(t.StartedAt)),
            ("$finished", Format(t.FinishedAt!.Value)), ("$outcome", outcome.ToLedger()));
        UpsertIndex(t.RunId, t.Index, t.IndexPhase, t.Attempt, t.Reason);
        if (t.Point is { } point)
        {
            Execute("""
                INSERT OR REPLACE INTO points (namespace, point_key, fields, digest, batchjob, run_id, idx, attempt)
                VALUES ($ns, $key, $fields, $digest, $job, $run, $idx, $attempt)
                """,
                ("$ns", point.Namespace), ("$key", point.Key), ("$fields", point.Fields), ("$digest", point.Digest), ("$job", point.BatchJob),
                ("$run", point.RunId), ("$idx", point.Index), ("$attempt", point.Attempt));
        }
    }

    /// <summary>
    /// Succeeded attempts of <paramref name="key"/> in <paramref name="ns"/> outside <paramref name="exceptRun"/>, the
    /// latest first (a reuse takes the first whose outputs are still as they were).
    /// </summary>
    public IReadOnlyList<PointRecord> FindPoints(string ns, string key, string exceptRun)
    {
        lock (_gate)
        {
            // Asked once per index of a run: prepared once.
            _findPoints ??= Prepare(
                "SELECT namespace, point_key, fields, digest, batchjob, run_id, idx, attempt FROM points WHERE namespace = $ns AND point_key = $key AND run_id <> $run ORDER BY rowid DESC LIMIT 8",
                "$ns", "$key", "$run");
            _findPoints.Parameters["$ns"].Value = ns;
            _findPoints.Parameters["$key"].Value = key;
            _findPoints.Parameters["$run"].Value = exceptRun;
            _findPoints.Transaction = _transaction;
            return ReadPoints(_findPoints);
        }
    }

    /// <summary>Whether any run of the namespace recorded a point (a store without any has nothing to look up).</summary>
    public bool HasPoints(string ns)
    {
        lock (_gate)
        {
            using var command = Command("SELECT EXISTS (SELECT 1 FROM points WHERE namespace = $ns)", ("$ns", ns));
            return command.ExecuteScalar() is 1L;
        }
    }

    /// <summary>Every point of a namespace (for <c>explain</c>: the nearest earlier point to a miss).</summary>
    public IReadOnlyList<PointRecord> PointsOf(string ns)
    {
        lock (_gate)
        {
            using var command = Command("SELECT namespace, point_key, fields, digest, batchjob, run_id, idx, attempt FROM points WHERE namespace = $ns ORDER BY rowid", ("$ns", ns));
            return ReadPoints(command);
        }
    }

    private SqliteCommand? _findPoints;

    private SqliteCommand Prepare(string sql, params string[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(new SqliteParameter(name, DBNull.Value));
        }

        command.Prepare();
        return command;
    }

    private static List<PointRecord> ReadPoints(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        var result = new List<PointRecord>();
        while (reader.Read())
        {
            result.Add(new PointRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5), reader.GetInt32(6), reader.GetInt32(7)));
        }

        return result;
    }

    public void FinishRun(string runId, RunPhase phase, string? reason, DateTimeOffset finishedAt)
    {
        lock (_gate)
        {
            Execute(
                "UPDATE runs SET phase = $phase, reason = $reason, finished_at = $finished, runner_pid = NULL WHERE run_id = $run",
                ("$run", runId), ("$phase", phase.ToString()), ("$reason", reason), ("$finished", Format(finishedAt)));
        }
    }

    /// <summary>Forgets a run: its record, its indexes and attempts, and the points it offered for reuse, together.</summary>
    public void DeleteRun(string runId)
    {
        lock (_gate)
        {
            using var scope = Begin();
            foreach (var table in new[] { "attempts", "indexes", "points", "runs" })
            {
                Execute($"DELETE FROM {table} WHERE run_id = $run", ("$run", runId));
            }

            scope.Commit();
        }
    }

    /// <summary>Asks the runner of every unfinished run of that name to stop; returns how many were asked.</summary>
    public int RequestCancel(string name, string? ns)
    {
        lock (_gate)
        {
            return Execute(
                "UPDATE runs SET cancel_requested = 1 WHERE name = $name AND ($ns IS NULL OR namespace = $ns) AND phase IN ('Pending', 'Running')",
                ("$name", name), ("$ns", ns));
        }
    }

    public bool IsCancelRequested(string runId)
    {
        lock (_gate)
        {
            using var command = Command("SELECT cancel_requested FROM runs WHERE run_id = $run", ("$run", runId));
            return command.ExecuteScalar() is long flag && flag != 0;
        }
    }

    public void Dispose()
    {
        _findPoints?.Dispose();
        foreach (var command in _prepared.Values)
        {
            command.Dispose();
        }

        _connection.Dispose();
    }

    /// <summary>Begins a transaction that the prepared statements join; disposing it without commit rolls back.</summary>
    private TransactionScope Begin()
    {
        _transaction = _connection.BeginTransaction();
        return new TransactionScope(this);
    }

    private sealed class TransactionScope(RunStateStore owner) : IDisposable
    {
        public void Commit() => owner._transaction!.Commit();

        public void Dispose()
        {
            owner._transaction?.Dispose();
            owner._transaction = null;
        }
    }

    private void UpsertIndex(string runId, int index, IndexPhase phase, int attempts, string? reason) =>
        Execute("""
            INSERT INTO indexes (run_id, idx, phase, attempts, last_reason) VALUES ($run, $idx, $phase, $attempts, $reason)
            ON CONFLICT (run_id, idx) DO UPDATE SET phase = $phase, attempts = max(attempts, $attempts), last_reason = $reason
            """,
            ("$run", runId), ("$idx", index), ("$phase", phase.ToString()), ("$attempts", attempts), ("$reason", reason));

    private List<RunRecord> QueryRuns(string tail, params (string Name, object? Value)[] parameters)
    {
        lock (_gate)
        {
            using var command = Command($"""
                SELECT r.run_id, r.namespace, r.name, r.completions, r.phase, r.reason, r.created_at, r.started_at, r.finished_at,
                       (SELECT count(*) FROM indexes i WHERE i.run_id = r.run_id AND i.phase = 'Succeeded'),
                       (SELECT count(*) FROM indexes i WHERE i.run_id = r.run_id AND i.phase = 'Failed'),
                       r.runner_pid
                FROM runs r {tail}
                """, parameters);
            using var reader = command.ExecuteReader();
            var result = new List<RunRecord>();
            while (reader.Read())
            {
                result.Add(new RunRecord(
                    reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3),
                    Enum.Parse<RunPhase>(reader.GetString(4)), reader.IsDBNull(5) ? null : reader.GetString(5),
                    Parse(reader.GetString(6)), reader.IsDBNull(7) ? null : Parse(reader.GetString(7)),
                    reader.IsDBNull(8) ? null : Parse(reader.GetString(8)), reader.GetInt32(9), reader.GetInt32(10),
                    reader.IsDBNull(11) ? null : reader.GetInt32(11)));
            }

            return result;
        }
    }

    private int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        if (!_prepared.TryGetValue(sql, out var command))
        {
            command = _connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, _) in parameters)
            {
                command.Parameters.Add(new SqliteParameter(name, DBNull.Value));
            }

            _prepared[sql] = command;
        }

        command.Transaction = _transaction;
        foreach (var (name, value) in parameters)
        {
            command.Parameters[name].Value = value ?? DBNull.Value;
        }

        return command.ExecuteNonQuery();
    }

    private SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    private static string Format(DateTimeOffset time) => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset Parse(string text) => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
