using System.Globalization;
using System.Text;
using System.Text.Json;
using Xunit;

namespace BatchRunner.EndToEnd.Tests;

/// <summary>
/// Workloads written to break the runner, run through <c>./batchrunner run</c> as a user runs them. Each case asserts
/// its exact outcome (exit code, each index's status, reason and output note, the table) and, for every case, that the
/// whole store stays queryable (<c>SELECT 1</c>, store-wide <c>SELECT *</c>, another BatchJob's rows unchanged) and that
/// no process of the case is left running (read from /proc: the environment or command line naming the case's store).
/// </summary>
public sealed class HostileWorkloadTests : IDisposable
{
    private readonly Cli _cli = new();

    public void Dispose() => _cli.Dispose();

    /// <summary>One hostile workload: its script (run by /bin/sh -c with $O the output folder), extra spec lines, and what must come of it.</summary>
    public sealed record Case(string Script, string Spec = "", int Exit = 0, string Status = "succeeded", string? Reason = null, string? Note = null, long? Rows = null, string? Check = null, string? Expect = null)
    {
        public override string ToString() => Script.Length > 60 ? Script[..60] : Script;
    }

    private const string Loop = "while :; do sleep 1; done";

    /// <summary>Output folders are private where the runner may make mount namespaces: root on Linux (as the test command runs).</summary>
    private static bool PrivateOutputFoldersHere => OperatingSystem.IsLinux() && Environment.IsPrivilegedProcess;

    /// <summary>Each attempt gets a freezer cgroup where cgroup v1's freezer is mounted and the runner is root.</summary>
    private static bool CgroupsHere => File.Exists("/sys/fs/cgroup/freezer/tasks") && Environment.IsPrivilegedProcess;
    private const string NoOutput = "no output: the workload wrote no files";

    public static TheoryData<string, Case> Cases => new()
    {
        // Output that would poison the table.
        { "an empty key", new(@"echo '{"""": 1, ""v"": 2}' > $O/r.jsonl", Rows: 1, Check: "SELECT unnamed, v FROM results WHERE batchjob = 'hostile'", Expect: "1,2") },
        { "keys differing only in case", new(@"echo '{""a"": 1, ""A"": 2}' > $O/r.jsonl", Check: "SELECT \"A\", a_2 FROM results WHERE batchjob = 'hostile'", Expect: "2,1") },
        { "a key with an escape character", new(@"printf '{""e\\u001bk"": 5}\n' > $O/r.jsonl", Check: "SELECT e_k FROM results WHERE batchjob = 'hostile'", Expect: "5") },
        { "a key named like a parameter", new(@"echo '{""x"": ""mine""}' > $O/r.jsonl", Check: "SELECT x, output_x FROM results WHERE batchjob = 'hostile' ORDER BY x", Expect: "1,mine\n2,mine") },
        { "a key named like the table's own column", new(@"echo '{""index"": 99, ""seed"": -1}' > $O/r.jsonl", Check: "SELECT \"index\", output_index, output_seed FROM results WHERE batchjob = 'hostile' ORDER BY 1", Expect: "0,99,-1\n1,99,-1") },
        { "a key of 10,000 characters", new(@"printf '{""%s"": 1}\n' $(head -c 10000 /dev/zero | tr '\0' k) > $O/r.jsonl", Check: "SELECT length(column_name) FROM result_columns WHERE batchjob = 'hostile'", Expect: "255") },
        { "500 keys", new(@"awk 'BEGIN { printf ""{""; for (i = 0; i < 500; i++) printf ""%s\""k%d\"": %d"", (i ? "", "" : """"), i, i; print ""}"" }' > $O/r.jsonl", Check: "SELECT k499 FROM results WHERE batchjob = 'hostile'", Expect: "499") },
        { "a nested object whose keys differ only in case", new(@"echo '{""n"": {""a"": 1, ""A"": 2}}' > $O/r.jsonl", Check: "SELECT n, typeof(n) FROM results WHERE batchjob = 'hostile'", Expect: "{\"a\":1,\"A\":2},VARCHAR") },
        { "a NUL inside a value", new(@"printf '{""v"": ""a\\u0000b""}\n' > $O/r.jsonl", Check: "SELECT length(v) FROM results WHERE batchjob = 'hostile'", Expect: "3") },
        { "a number beyond 64 bits", new(@"echo '{""v"": 123456789012345678901234567890}' > $O/r.jsonl", Check: "SELECT typeof(v) FROM results WHERE batchjob = 'hostile'", Expect: "DOUBLE") },
        { "the steady run's column with another type", new(@"echo '{""mean"": ""not a number""}' > $O/r.jsonl", Check: "SELECT count(*) FROM results WHERE typeof(mean) = 'VARCHAR'", Expect: "4") },
        { "lines that are no objects", new(@"printf '{""v"": 1}\n[1, 2]\n7\nnot json\n' > $O/r.jsonl", Rows: 1, Note: "3 malformed line(s) left out of results; first: r.jsonl line 2: not a JSON object") },
        { "a line that is not UTF-8", new(@"printf '{""v"": ""\377\376""}\n{""v"": ""ok""}\n' > $O/r.jsonl", Rows: 1, Note: "first: r.jsonl line 1: not valid UTF-8") },
        { "a line of 17 MB", new(@"{ printf '{""v"": ""'; head -c 17000000 /dev/zero | tr '\0' b; printf '""}\n{""v"": ""ok""}\n'; } > $O/r.jsonl", Rows: 1, Note: "first: r.jsonl line 1: is longer than 16,777,216 bytes") },
        { "an empty result file", new(@": > $O/r.jsonl", Rows: 0, Note: "no rows: the .jsonl files are empty") },
        { "a CSV row of the wrong width", new(@"printf 'a,b\n1,2\n3\n4,5,6\n7,8\n' > $O/r.csv", Spec: "results: {format: csv}", Rows: 2, Note: "2 malformed line(s) left out of results; first: r.csv line 3: 1 field(s) where the header has 2") },
        { "a CSV quote that never closes", new(@"printf 'a,b\n1,2\n3,""4\n5,6\n' > $O/r.csv", Spec: "results: {format: csv}", Rows: 1, Note: "a quoted field never closes") },
        { "CSV text after a closing quote", new(@"printf 'a,b\n1,""x"" y\n2,3\n' > $O/r.csv", Spec: "results: {format: csv}", Rows: 1, Note: "text follows a quoted field's closing quote") },
        { "a CSV row that is not UTF-8", new(@"printf 'a,b\n1,\377\n2,3\n' > $O/r.csv", Spec: "results: {format: csv}", Rows: 1, Note: "not valid UTF-8") },
        { "a CSV header with a repeated and an empty name", new(@"printf 'a,a,,A\n1,2,3,4\n' > $O/r.csv", Spec: "results: {format: csv}", Check: "SELECT a_2, a_2_2, unnamed, \"A\" FROM results WHERE batchjob = 'hostile'", Expect: "1,2,3,4") },
        { "a CSV file whose header is not UTF-8", new(@"printf '\377,b\n1,2\n' > $O/r.csv", Spec: "results: {format: csv}", Rows: 0, Note: "the header cannot be read (not valid UTF-8), so no row of the file is read") },
        // Output that would wedge or mislead the runner.
        { "a FIFO named like a result file", new(@"mkfifo $O/r.jsonl", Spec: "timeoutSeconds: 20", Rows: 0, Note: "r.jsonl (FIFO)") },
        { "a link to /etc/passwd", new(@"ln -s /etc/passwd $O/r.jsonl", Rows: 0, Note: "r.jsonl (symbolic link)") },
        { "a link to /etc", new(@"ln -s /etc $O/etc", Rows: 0, Note: "etc (symbolic link)") },
        { "a link to /dev/zero", new(@"ln -s /dev/zero $O/r.jsonl", Rows: 0, Note: "r.jsonl (symbolic link)") },
        { "a socket named like a result file", new(@"python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' $O/r.jsonl", Rows: 0, Note: "r.jsonl (socket)") },
        // (Where output folders are private the folder is a mount point that cannot be removed: the link lands inside it.)
        { "the output folder swapped for a link to /etc", new(@"rm -rf $O; ln -s /etc $O", Rows: 0, Note: PrivateOutputFoldersHere ? "etc (symbolic link)" : "the output folder itself is a symbolic link") },
        { "folders 40 deep", new(@"d=$O; for i in $(seq 40); do d=$d/d; done; mkdir -p $d && echo '{""v"": 1}' > $d/r.jsonl; echo '{""v"": 2}' > $O/r.jsonl", Rows: 1, Note: "folder nested too deep") },
        { "1,000 result files", new(@"for i in $(seq 1000); do echo ""{\""v\"": $i}"" > $O/r$i.jsonl; done", Rows: 1000) },
        { "an output folder removed", new(@"rm -rf $O; true", Rows: 0, Note: "no output: the workload wrote no files") },
        // Writes outside the attempt's own output folder: another BatchJob's outputs, the run state, the store, its own logs.
        { "writes into other folders of the store", new(
            @"S=$O/../../../../..; w=no; for f in $S/batchjob=steady/*/index=*/attempt=*/output/r.jsonl $S/state.db $S/evil $O/../logs/stdout.txt; do (: >> ""$f"") 2>/dev/null && w=""$w $f""; done; echo ""{\""wrote\"": \""$w\""}"" > $O/r.jsonl",
            Check: "SELECT wrote = 'no' FROM results WHERE batchjob = 'hostile'",
            Expect: PrivateOutputFoldersHere ? "true" : "false") },
        // Processes that would escape the attempt.
        { "a background child left behind", new($"sh -c '{Loop}' $O & echo '{{\"v\": 1}}' > $O/r.jsonl", Reason: "process(es) the attempt left running when it ended") },
        { "a child in a session of its own", new($"setsid sh -c '{Loop}' $O & sleep 0.3; echo '{{\"v\": 1}}' > $O/r.jsonl", Reason: "process(es) the attempt left running when it ended") },
        { "a daemon (double fork, setsid)", new($"sh -c \"setsid sh -c '{Loop}' $O >/dev/null 2>&1 &\"; sleep 0.3; exit 0", Reason: "process(es) the attempt left running when it ended", Note: NoOutput) },
        { "a nohup child with an empty environment", new($"nohup env -i sh -c '{Loop}' $O >/dev/null 2>&1 & sleep 0.3", Reason: "process(es) the attempt left running when it ended", Note: NoOutput) },
        { "a detached child of an attempt that fails", new($"setsid sh -c '{Loop}' $O & sleep 0.3; exit 3", Exit: 1, Status: "failed", Reason: "exit code 3; killed", Note: NoOutput) },
        { "a detached child of an attempt that times out", new($"setsid sh -c '{Loop}' $O & {Loop}", Spec: "timeoutSeconds: 1", Exit: 1, Status: "timed_out", Reason: "timed out after 1s", Note: NoOutput) },
        { "a process that ignores SIGTERM and times out", new($"trap '' TERM; {Loop}", Spec: "timeoutSeconds: 1", Exit: 1, Status: "timed_out", Reason: "timed out after 1s", Note: NoOutput) },
        // Neither in the attempt's process group nor naming its output folder: only a cgroup tells it is the attempt's
        // (without one, it is killed when the run ends, not named in the attempt's reason).
        { "a child in a session of its own with an empty environment", new($"env -i setsid sh -c '{Loop}' & sleep 0.3", Reason: CgroupsHere ? "process(es) the attempt left running when it ended" : null, Note: NoOutput) },
        { "50 children and an exit", new($"for i in $(seq 50); do sh -c '{Loop}' $O & done; exit 0", Reason: "process(es) the attempt left running when it ended", Note: NoOutput) },
        { "stdout and stderr closed, then a hang", new($"exec >&- 2>&-; {Loop}", Spec: "timeoutSeconds: 1", Exit: 1, Status: "timed_out", Reason: "timed out after 1s", Note: NoOutput) },
        { "a crash by a signal", new(@"kill -SEGV $$", Exit: 1, Status: "failed", Reason: "killed by signal 11, SIGSEGV", Note: NoOutput) },
        // Text that would act on a terminal.
        { "escape sequences on stderr", new(@"printf '\033]0;owned\007\033[2J\033[31mred\n' >&2; exit 4", Exit: 1, Status: "failed", Reason: "exit code 4", Note: NoOutput) },
        { "escape sequences in a value", new(@"printf '{""v"": ""\\u001b[31mred""}\n' > $O/r.jsonl", Check: "SELECT v FROM results WHERE batchjob = 'hostile'", Expect: "\u001b[31mred") },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_hostile_workload_gets_a_clear_outcome_leaves_the_store_queryable_and_no_process_behind(string name, Case @case)
    {
        var steady = _cli.WriteSpec("steady.yaml", Spec("steady", "echo '{\"mean\": 1.5}' > $O/r.jsonl", ""));
        Assert.Equal(0, (await _cli.RunAsync("run", steady)).ExitCode);
        var hostile = _cli.WriteSpec("hostile.yaml", Spec("hostile", @case.Script, @case.Spec));

        var run = await _cli.RunAsync("run", hostile);

        Assert.True(@case.Exit == run.ExitCode, $"{name}: {run}");
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b", run.Stdout + run.Stderr, StringComparison.Ordinal);
        var indexes = await QueryAsync("SELECT status, coalesce(reason, ''), coalesce(output_note, ''), output_rows FROM indexes WHERE batchjob = 'hostile' ORDER BY \"index\"");
        Assert.Equal(2, indexes.Count);
        foreach (var row in indexes)
        {
            Assert.True(row[0] == @case.Status, $"{name}: status {row[0]}, expected {@case.Status}\n{run}");
            Assert.True(@case.Reason is null ? row[1] == "" : row[1].Contains(@case.Reason, StringComparison.Ordinal), $"{name}: reason \"{row[1]}\"");
            Assert.True(@case.Note is null ? row[2] == "" : row[2].Contains(@case.Note, StringComparison.Ordinal), $"{name}: note \"{row[2]}\"");
            Assert.True(@case.Rows is null || row[3] == @case.Rows.Value.ToString(CultureInfo.InvariantCulture), $"{name}: {row[3]} rows, expected {@case.Rows}");
        }

        // Every row the ledger counts is in the table: nothing vanished.
        Assert.Equal(
            await QueryAsync("SELECT coalesce(sum(output_rows), 0) FROM indexes WHERE batchjob = 'hostile' AND status = 'succeeded'"),
            await QueryAsync("SELECT count(*) FROM results WHERE batchjob = 'hostile'"));
        if (@case.Check is not null)
        {
            Assert.Equal(@case.Expect, string.Join('\n', (await QueryAsync(@case.Check)).Select(r => string.Join(',', r)).Distinct()));
        }

        // The store stays whole for everyone.
        Assert.Equal([["1"]], await QueryAsync("SELECT 1"));
        Assert.Equal([["1.5"], ["1.5"]], await QueryAsync("SELECT mean FROM results WHERE batchjob = 'steady'"));
        Assert.NotEmpty(await QueryAsync("SELECT * FROM results"));
        Assert.NotEmpty(await QueryAsync("SELECT * FROM indexes"));
        Assert.Empty(await LeftRunningAsync());
    }

    [Fact]
    public async Task A_runner_killed_with_its_workloads_detached_leaves_nothing_once_resumed()
    {
        var spec = _cli.WriteSpec("hostile.yaml", Spec("hostile", $"setsid sh -c '{Loop}' $O & {Loop}", ""));
        using var runner = _cli.Start("run", spec);
        await WaitForAsync(async () => (await LeftRunningAsync()).Count >= 4, "the attempts and their detached children run");

        runner.Kill();
        await runner.WaitForExitAsync();
        var status = await _cli.RunAsync("status");
        var cancel = await _cli.RunAsync("cancel", "hostile");

        Assert.Contains("Interrupted", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("its runner is gone", cancel.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, cancel.ExitCode);
        await WaitForAsync(async () => (await LeftRunningAsync()).Count == 0, "cancel killed what the dead runner left");
    }

    private static string Spec(string name, string script, string extra) => $"""
        apiVersion: batchrunner.io/v1alpha1
        kind: BatchJob
        metadata: {'{'}name: {name}{'}'}
        spec:
          command: ["/bin/sh", "-c", {JsonSerializer.Serialize("O=$BATCHRUNNER_OUTPUT_DIR; " + script)}]
          sweep: {'{'}grid: {'{'}x: [1, 2]{'}'}{'}'}
          parallelism: 2
          {extra}
        """;

    private async Task<List<string[]>> QueryAsync(string sql)
    {
        var result = await _cli.RunAsync("query", "--format", "csv", sql);
        Assert.True(result.ExitCode == 0, $"query {sql}: {result}");
        return ParseCsv(result.Stdout).Skip(1).ToList();
    }

    /// <summary>Processes still running whose environment or command line names this test's store: the case's, by construction.</summary>
    private async Task<List<int>> LeftRunningAsync()
    {
        await Task.Delay(200);
        var marker = Encoding.UTF8.GetBytes(_cli.Store);
        var found = new List<int>();
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                var stat = await File.ReadAllTextAsync(Path.Combine(folder, "stat"));
                if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z'))
                {
                    continue;
                }

                if ((await File.ReadAllBytesAsync(Path.Combine(folder, "environ"))).AsSpan().IndexOf(marker) >= 0
                    || (await File.ReadAllBytesAsync(Path.Combine(folder, "cmdline"))).AsSpan().IndexOf(marker) >= 0)
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile.
            }
        }

        return found;
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        for (var i = 0; i < 100; i++)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException(what);
    }

    /// <summary>RFC 4180 rows of the CLI's CSV output.</summary>
    private static IEnumerable<string[]> ParseCsv(string text)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\n')
            {
                fields.Add(field.ToString());
                field.Clear();
                yield return fields.ToArray();
                fields.Clear();
            }
            else if (c != '\r')
            {
                field.Append(c);
            }
        }
    }
}
