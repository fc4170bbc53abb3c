using System.Diagnostics;
using System.Text.RegularExpressions;

namespace BatchRunner.Charts.Tests.Images;

/// <summary>
/// The three images, built once per test run with podman exactly as <c>charts/build-images.sh --engine podman</c>
/// builds them for users (from the stand-in base images), tagged <see cref="Tag"/>. A build that fails fails every
/// test that needs the images, naming the image and the Dockerfile step that broke.
/// </summary>
internal static partial class BuiltImages
{
    public const string Tag = "test";
    public const string Controller = "batchrunner/controller:" + Tag;
    public const string MmcQueue = "batchrunner/mmc-queue:" + Tag;
    public const string PiMonteCarlo = "batchrunner/pi-monte-carlo:" + Tag;

    private static readonly Lazy<Task<Built>> Build = new(() => Task.Run(BuildAll));

    /// <summary>How the build went: its length, or what broke.</summary>
    public sealed record Built(TimeSpan Took, string? Failure);

    /// <summary>Waits for the images (building them the first time); fails the calling test if they did not build.</summary>
    public static async Task<TimeSpan> EnsureAsync()
    {
        var built = await Build.Value;
        Assert.True(built.Failure is null, built.Failure);
        return built.Took;
    }

    private static Built BuildAll()
    {
        var conf = Podman.ContainersConf;
        var nugetCache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } packages
            ? packages : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var watch = Stopwatch.StartNew();
        var result = Programs.Run(Path.Combine(Helm.RepoRoot, "charts", "build-images.sh"), ["--engine", "podman", "--no-load", "--tag", Tag, "--nuget-cache", nugetCache],
            TimeSpan.FromMinutes(30), new Dictionary<string, string> { ["CONTAINERS_CONF"] = conf });
        if (result.ExitCode == 0)
        {
            // Each build of changed sources leaves the last one's layers behind: those older than a day go.
            Programs.Run("podman", ["image", "prune", "--force", "--filter", "until=24h"], TimeSpan.FromMinutes(5), new Dictionary<string, string> { ["CONTAINERS_CONF"] = conf });
            return new Built(watch.Elapsed, null);
        }

        return new Built(watch.Elapsed, "charts/build-images.sh --engine podman " + Failure(result));
    }

    /// <summary>What a failed build broke: the image build-images.sh was building, and podman's last step.</summary>
    public static string Failure(ProgramResult build)
    {
        var log = build.Output + build.Error;
        var image = BuildingLine().Matches(log).LastOrDefault()?.Groups[1].Value ?? "(an image it did not name)";
        var step = StepLine().Matches(log).LastOrDefault()?.Value.Trim() ?? "(no step started)";
        return $"failed building {image} at {step}\n{build}";
    }

    [GeneratedRegex(@"build-images: building (\S+ from \S+)")]
    private static partial Regex BuildingLine();

    [GeneratedRegex(@"^\[\d+/\d+\] STEP \d+/\d+: .*$|^STEP \d+/\d+: .*$", RegexOptions.Multiline)]
    private static partial Regex StepLine();
}
