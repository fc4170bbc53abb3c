using System.Diagnostics;
using System.Text;
using System.Text.Json;
using BatchRunner.Core.Spec;

namespace BatchRunner.Results.Tests.Support;

/// <summary>batchrunner-exec run as a process, as a pod or an AWS Batch job runs it.</summary>
public static class Wrapper
{
    /// <summary>The wrapper's build output beside the tests (a project reference copies it).</summary>
    public static string Dll { get; } = Path.Combine(AppContext.BaseDirectory, "batchrunner-exec.dll");

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Process Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Dll);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // Nothing of the test process's own index variables leaks in.
        foreach (var name in new[] { "BATCHRUNNER_INDEX", "JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX", "BATCHRUNNER_INDEX_OFFSET", "AWS_BATCH_JOB_ATTEMPT", "BATCHRUNNER_OUTPUT_DIR", "BATCHRUNNER_INDEXES", "BATCHRUNNER_ATTEMPT_NUMBERING", "BATCHRUNNER_BACKEND" })
        {
            info.Environment.Remove(name);
        }

        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        return Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
    }

    public static async Task<Result> RunAsync(IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        using var process = Start(arguments, environment);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>A BatchJob running a /bin/sh script (the wrapper runs sh directly, no shell of its own).</summary>
    public static BatchJob Job(string script, string extraSpec = "", string name = "job") =>
        BatchJobParser.Parse($$"""
            apiVersion: batchrunner.io/v1alpha1
            kind: BatchJob
            metadata: {name: {{name}}}
            spec:
              command: ["/bin/sh", "-c", {{JsonSerializer.Serialize(script)}}]
            {{string.Join("\n", extraSpec.Split('\n').Select(l => l.Length == 0 ? l : "  " + l))}}
            """).GetJobOrThrow();

    public static string[] Arguments(string spec, string store, BatchJob job) =>
        ["--spec", spec, "--store", store, "--", .. job.Spec.Command, .. job.Spec.Args];
}
