using System.Diagnostics;
using System.Text;

namespace BatchRunner.EndToEnd.Tests;

/// <summary>What a finished command printed and returned.</summary>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs <c>./batchrunner</c> from the repository root, as the README does, with a store of the test's own.</summary>
public sealed class Cli : IDisposable
{
    public Cli()
    {
        Store = Directory.CreateTempSubdirectory("batchrunner-e2e-").FullName;
        Scratch = Directory.CreateDirectory(Path.Combine(Store, "..", Path.GetFileName(Store) + "-scratch")).FullName;
    }

    public static string RepoRoot { get; } = FindRepoRoot();

    public string Store { get; }
    public string Scratch { get; }

    public Process Start(params string[] args)
    {
        var start = new ProcessStartInfo(Path.Combine(RepoRoot, "batchrunner"))
        {
            WorkingDirectory = RepoRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["BATCHRUNNER_STORE"] = Store;
        start.Environment["SCRATCH"] = Scratch;
        return Process.Start(start)!;
    }

    public Task<CommandResult> RunAsync(params string[] args) => RunWithInputAsync(null, args);

    public async Task<CommandResult> RunWithInputAsync(string? stdin, params string[] args)
    {
        using var process = Start(args);
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await process.WaitForExitAsync(timeout.Token);
        return new CommandResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Waits until <paramref name="condition"/> holds (say, a run in the background started its index): two minutes at most, as ./batchrunner may be building itself first.</summary>
    public static async Task WaitForAsync(Func<bool> condition, string what)
    {
        for (var i = 0; i < 2400 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Xunit.Assert.True(condition(), what);
    }

    /// <summary>Writes a spec into the scratch folder and returns its path.</summary>
    public string WriteSpec(string name, string yaml)
    {
        var path = Path.Combine(Scratch, name);
        File.WriteAllText(path, yaml, Encoding.UTF8);
        return path;
    }

    public void Dispose()
    {
        foreach (var folder in new[] { Store, Scratch })
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // A killed process may still hold a file for a moment; the OS cleans temp later.
            }
        }
    }

    private static string FindRepoRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "BatchRunner.sln")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException("BatchRunner.sln not found above " + AppContext.BaseDirectory);
    }
}
