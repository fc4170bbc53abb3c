using System.Diagnostics;
using System.Text.Json;

namespace BatchRunner.Workloads.Tests;

/// <summary>What one workload run left behind: exit code, stderr and the results file, if any.</summary>
internal sealed record WorkloadOutcome(int ExitCode, string Error, string? Results)
{
    /// <summary>The single result row; fails the test unless exactly one line was written.</summary>
    public JsonElement SingleRow()
    {
        Assert.NotNull(Results);
        var line = Assert.Single(Results.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        return JsonDocument.Parse(line).RootElement.Clone();
    }
}

/// <summary>Runs a workload's entry logic in-process, or its built dll as a real process, in a fresh output directory.</summary>
internal static class WorkloadHarness
{
    public delegate int WorkloadEntry(IReadOnlyDictionary<string, string?> environment, TextWriter error);

    public static WorkloadOutcome RunInProcess(WorkloadEntry entry, string parametersJson, int seed = 1)
    {
        var outputDirectory = Directory.CreateTempSubdirectory("workload-test-");
        try
        {
            var environment = new Dictionary<string, string?>
            {
                ["BATCHRUNNER_PARAMS"] = parametersJson,
                ["BATCHRUNNER_SEED"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["BATCHRUNNER_OUTPUT_DIR"] = outputDirectory.FullName,
            };
            using var error = new StringWriter();
            var exitCode = entry(environment, error);
            return new WorkloadOutcome(exitCode, error.ToString(), ReadResults(outputDirectory.FullName));
        }
        finally
        {
            outputDirectory.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Runs `dotnet &lt;dll&gt;` in a fresh working directory with only BATCHRUNNER_PARAMS and BATCHRUNNER_SEED set,
    /// so the results land in the current directory.
    /// </summary>
    public static WorkloadOutcome RunBuiltProgram(string assemblyPath, string parametersJson, int seed = 1)
    {
        var workingDirectory = Directory.CreateTempSubdirectory("workload-process-test-");
        try
        {
            var startInfo = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = workingDirectory.FullName,
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            startInfo.ArgumentList.Add(assemblyPath);
            startInfo.Environment.Remove("BATCHRUNNER_OUTPUT_DIR");
            startInfo.Environment["BATCHRUNNER_PARAMS"] = parametersJson;
            startInfo.Environment["BATCHRUNNER_SEED"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture);

            using var process = Process.Start(startInfo)!;
            var standardOutput = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEnd();
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)), "the workload process did not finish within 30 s");
            _ = standardOutput.Result;
            return new WorkloadOutcome(process.ExitCode, error, ReadResults(workingDirectory.FullName));
        }
        finally
        {
            workingDirectory.Delete(recursive: true);
        }
    }

    private static string? ReadResults(string directory)
    {
        var path = Path.Combine(directory, "results.jsonl");
        return File.Exists(path) ? File.ReadAllText(path) : null;
    }
}
