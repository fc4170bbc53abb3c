using System.Text.Json;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Core.Store;
using BatchRunner.Local.Execution;
using BatchRunner.Local.State;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRunner.Local.Tests;

/// <summary>A temporary store and scratch folder per test, and helpers to run shell-scripted indexes in it.</summary>
public sealed class LocalRun : IDisposable
{
    public LocalRun()
    {
        Root = Directory.CreateTempSubdirectory("batchrunner-local-").FullName;
        Store = Path.Combine(Root, "store");
        Scratch = Directory.CreateDirectory(Path.Combine(Root, "scratch")).FullName;
    }

    public string Root { get; }
    public string Store { get; }

    /// <summary>A folder the test's scripts share (marker files, timestamps), outside the store.</summary>
    public string Scratch { get; }

    /// <summary>A job whose every index runs <paramref name="script"/> with /bin/sh; SCRATCH is set for it.</summary>
    public BatchJob Job(string script, string extraSpec = "", string name = "job") =>
        BatchJobParser.Parse($$"""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: {{name}}}
            spec:
              command: ["/bin/sh", "-c", {{JsonSerializer.Serialize(script)}}]
              env: [{name: SCRATCH, value: {{JsonSerializer.Serialize(Scratch)}}}]
            {{Indent(extraSpec)}}
            """).GetJobOrThrow();

    public LocalExecutor Executor(TimeSpan? cancelPoll = null) => new(
        new LocalRunOptions { StoreRoot = Store, WorkingDirectory = Scratch, CancelPollInterval = cancelPoll ?? TimeSpan.FromMilliseconds(100) },
        TimeProvider.System,
        NullLogger<LocalExecutor>.Instance);

    public Task<RunReport> RunAsync(BatchJob job, CancellationToken cancellation = default) =>
        Executor().RunAsync(job, null, cancellation);

    /// <summary>Every ledger row of the job's run, ordered by index then attempt.</summary>
    public List<LedgerRow> Ledger(BatchJob job)
    {
        var runFolder = Path.Combine(Store, StoreLayout.RunPrefix(job.Metadata.Name, RunIdentity.For(job)));
        return !Directory.Exists(runFolder)
            ? []
            : Directory.EnumerateFiles(runFolder, StoreLayout.LedgerFile, SearchOption.AllDirectories)
                .Select(path => LedgerRow.FromJson(File.ReadAllBytes(path)))
                .OrderBy(r => r.Index).ThenBy(r => r.Attempt)
                .ToList();
    }

    public RunStateStore State() => RunStateStore.Open(Store);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A process a test killed may still be releasing a file; the temp folder is cleaned by the OS later.
        }
    }

    private static string Indent(string text) =>
        string.Join("\n", text.Split('\n').Select(line => line.Length == 0 ? line : "  " + line));
}

/// <summary>Is a pid alive? (Signal 0 through /proc, without touching the process.)</summary>
public static class Pids
{
    public static bool IsAlive(int pid)
    {
        var stat = $"/proc/{pid}/stat";
        if (!File.Exists(stat))
        {
            return false;
        }

        // A zombie has exited; only its parent has not reaped it yet.
        var text = File.ReadAllText(stat);
        return text[(text.LastIndexOf(')') + 2)] != 'Z';
    }

    public static async Task<bool> WaitUntilGoneAsync(int pid, TimeSpan within)
    {
        var until = DateTime.UtcNow + within;
        while (DateTime.UtcNow < until)
        {
            if (!IsAlive(pid))
            {
                return true;
            }

            await Task.Delay(20);
        }

        return !IsAlive(pid);
    }
}
