using System.Globalization;
using System.Text.Json;
using BatchRunner.Aws.Batch;
using BatchRunner.Kubernetes.Dispatch;
using Xunit.Abstractions;

namespace BatchRunner.Charts.Tests.Images;

/// <summary>
/// What the chart and the backends rely on inside each image built from its Dockerfile: the wrapper where each backend
/// runs it, the user, the entrypoint and command, and no shell in the chiseled controller image.
/// </summary>
public sealed class ImageContentTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> WrapperPaths() => new()
    {
        // Kubernetes: the init container runs the controller image's wrapper to install it into the pod.
        { BuiltImages.Controller, ResultsCollection.ImagePath },
        // AWS Batch: the job runs the workload image's own wrapper at AwsBatchOptions.ExecPath.
        { BuiltImages.MmcQueue, new AwsBatchOptions().ExecPath },
        { BuiltImages.PiMonteCarlo, new AwsBatchOptions().ExecPath },
    };

    [Theory]
    [MemberData(nameof(WrapperPaths))]
    public async Task Each_image_holds_a_runnable_wrapper_where_the_backends_run_it(string image, string wrapper)
    {
        await BuiltImages.EnsureAsync();

        // Run with no arguments, the wrapper itself answers (its usage, exit 125): it is there, executable, and starts.
        var run = await Podman.RunAsync("run", "--rm", "--network", "none", "--entrypoint", wrapper, image);
        Assert.True(run.ExitCode == 125 && run.Error.Contains("--spec", StringComparison.Ordinal), $"{image}: {wrapper} did not answer with its usage: {run}");
    }

    [Fact]
    public async Task The_controller_image_is_chiseled_runs_as_1654_and_starts_the_controller()
    {
        await BuiltImages.EnsureAsync();
        var config = await ConfigAsync(BuiltImages.Controller);

        Assert.Equal("1654", config.GetProperty("User").GetString());
        Assert.Equal(["dotnet", "batchrunner-controller.dll"], config.GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("/app", config.GetProperty("WorkingDir").GetString());
        var shell = await Podman.RunAsync("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", BuiltImages.Controller, "-c", "true");
        Assert.True(shell.ExitCode == 127, $"the controller image has a shell: {shell}");
        await ReportSizeAsync(BuiltImages.Controller);
    }

    [Theory]
    [InlineData(BuiltImages.MmcQueue, "mmc-queue", """{"arrival_rate": 0.9, "service_rate": 1.0, "servers": 2}""")]
    [InlineData(BuiltImages.PiMonteCarlo, "pi-monte-carlo", """{"samples": 1000}""")]
    public async Task A_workload_image_runs_as_1654_and_its_command_simulates_a_point(string image, string workload, string parameters)
    {
        await BuiltImages.EnsureAsync();
        var config = await ConfigAsync(image);

        Assert.Equal("1654", config.GetProperty("User").GetString());
        Assert.Equal(["dotnet", $"workloads/bin/{workload}/{workload}.dll"], config.GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()));
        // As its Dockerfile's header says to run it: its own command, a point and a seed, output in its default folder.
        var run = await Podman.RunAsync("run", "--rm", "--network", "none", "-e", "BATCHRUNNER_PARAMS=" + parameters, "-e", "BATCHRUNNER_SEED=1", image);
        Assert.True(run.ExitCode == 0, $"{image}: {run}");
        await ReportSizeAsync(image);
    }

    private static async Task<JsonElement> ConfigAsync(string image)
    {
        var inspect = await Podman.RunAsync("image", "inspect", image);
        Assert.True(inspect.ExitCode == 0, $"podman image inspect {image}: {inspect}");
        return JsonDocument.Parse(inspect.Output).RootElement[0].GetProperty("Config");
    }

    private async Task ReportSizeAsync(string image)
    {
        var size = await Podman.RunAsync("image", "inspect", "--format", "{{.Size}}", image);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{image}: {long.Parse(size.Output.Trim(), CultureInfo.InvariantCulture) / 1e6:F0} MB"));
    }
}

/// <summary>A Dockerfile that no longer builds fails the image tests with the image and the step that broke.</summary>
public sealed class BrokenDockerfileTests : IDisposable
{
    private readonly DirectoryInfo _temp = Directory.CreateTempSubdirectory("broken-dockerfile-");

    public void Dispose() => _temp.Delete(recursive: true);

    [Fact]
    public async Task A_Dockerfile_whose_wrapper_stage_misses_a_project_fails_naming_the_image_and_the_step()
    {
        await BuiltImages.EnsureAsync();
        // The fault the Dockerfiles once had: the wrapper's stage without a project the wrapper references.
        var source = Path.Combine(Helm.RepoRoot, "workloads", "mmc-queue", "Dockerfile");
        var dockerfile = Path.Combine(_temp.FullName, "Dockerfile");
        var original = await File.ReadAllLinesAsync(source);
        var lines = original.Where(l => l != "COPY controller/BatchRunner.Store/ controller/BatchRunner.Store/").ToList();
        Assert.Equal(original.Length - 1, lines.Count);
        await File.WriteAllLinesAsync(dockerfile, lines);
        File.Copy(source + ".dockerignore", dockerfile + ".dockerignore");

        var build = await Podman.RunAsync(["build", "--network", "host", "-f", dockerfile, "-t", "batchrunner/mmc-queue:broken", Helm.RepoRoot], TimeSpan.FromMinutes(10));
        Assert.NotEqual(0, build.ExitCode);
        var failure = BuiltImages.Failure(build with { Output = $"build-images: building batchrunner/mmc-queue:broken from {dockerfile} with podman\n" + build.Output });

        Assert.StartsWith($"failed building batchrunner/mmc-queue:broken from {dockerfile} at [", failure, StringComparison.Ordinal);
        Assert.Matches(@"^failed building \S+ from \S+ at \[2/3\] STEP (\d+)/\1: RUN dotnet publish controller/BatchRunner\.Exec/", failure);
        Assert.Contains("BatchRunner.Store", failure, StringComparison.Ordinal);
    }
}
