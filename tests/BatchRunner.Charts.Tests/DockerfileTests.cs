using System.Diagnostics;
using System.Text.RegularExpressions;

namespace BatchRunner.Charts.Tests;

/// <summary>
/// The images' Dockerfiles and charts/build-images.sh. No Docker engine is installable here, so the images are
/// not built in tests: their structure is checked instead (multi-stage, a runtime base, a numeric non-root
/// user, exec-form commands), every path they copy exists and passes their allow-list, and the script builds
/// each of them under the names the chart and the examples use.
/// </summary>
public partial class DockerfileTests
{
    private static readonly string[] AllDockerfiles =
    [
        "controller/BatchRunner.Controller/Dockerfile",
        "workloads/mmc-queue/Dockerfile",
        "workloads/pi-monte-carlo/Dockerfile",
    ];

    public static TheoryData<string> Dockerfiles() => new(AllDockerfiles);

    private sealed record Instruction(string Keyword, string Arguments, int Stage);

    [Theory]
    [MemberData(nameof(Dockerfiles))]
    public void The_image_is_built_in_stages_and_runs_as_a_numeric_non_root_user(string dockerfile)
    {
        var instructions = Parse(dockerfile);
        var froms = instructions.Where(i => i.Keyword == "FROM").ToList();

        Assert.True(froms.Count >= 2, $"{dockerfile}: not a multi-stage build");
        Assert.All(froms, f => Assert.Matches(@"^(--platform=\S+ )?mcr\.microsoft\.com/dotnet/[a-z-]+:10\.0\S* AS [a-z]+$", f.Arguments));
        var last = froms[^1].Stage;
        var final = instructions.Where(i => i.Stage == last).ToList();
        Assert.DoesNotContain("/dotnet/sdk:", froms[^1].Arguments, StringComparison.Ordinal);
        Assert.Matches("/dotnet/(runtime|aspnet|runtime-deps):", froms[^1].Arguments);
        // The build stages run on the builder's platform and publish for the target's architecture.
        Assert.All(froms.SkipLast(1), f => Assert.StartsWith("--platform=$BUILDPLATFORM ", f.Arguments, StringComparison.Ordinal));
        Assert.All(instructions.Where(i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish", StringComparison.Ordinal)),
            r => Assert.Contains("-a $TARGETARCH", r.Arguments, StringComparison.Ordinal));

        var user = Assert.Single(final, i => i.Keyword == "USER").Arguments;
        Assert.True(user is "$APP_UID" or "1654", $"{dockerfile}: USER {user} (numeric, non-root, so runAsNonRoot can verify it)");
        var afterUser = final.SkipWhile(i => i.Keyword != "USER").Skip(1).ToList();
        Assert.DoesNotContain(afterUser, i => i.Keyword is "RUN" or "COPY" or "ADD" or "USER");

        var command = Assert.Single(final, i => i.Keyword is "CMD" or "ENTRYPOINT").Arguments;
        Assert.Matches("^\\[\".*\"\\]$", command); // exec form: signals reach the process, no shell in between
        Assert.DoesNotContain(instructions, i => i.Keyword == "ADD");
    }

    [Theory]
    [MemberData(nameof(Dockerfiles))]
    public void Every_copied_path_exists_and_passes_the_allow_list(string dockerfile)
    {
        var instructions = Parse(dockerfile);
        var stages = instructions.Where(i => i.Keyword == "FROM").Select(i => i.Arguments.Split(' ')[^1]).ToList();
        var ignore = File.ReadAllLines(Path.Combine(Helm.RepoRoot, dockerfile + ".dockerignore"))
            .Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Equal("*", ignore[0]); // an allow-list: nothing from the host but what is named

        foreach (var copy in instructions.Where(i => i.Keyword == "COPY"))
        {
            var words = copy.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words[0].StartsWith("--from=", StringComparison.Ordinal))
            {
                var from = words[0]["--from=".Length..];
                Assert.Contains(from, stages.Take(copy.Stage));
                continue;
            }

            foreach (var source in words[..^1])
            {
                Assert.True(Allowed(ignore, source), $"{dockerfile}: COPY {source} is excluded by its .dockerignore");
                Assert.True(Path.Exists(Path.Combine(Helm.RepoRoot, source)), $"{dockerfile}: COPY {source}: no such path in the repository");
            }
        }

        foreach (var publish in instructions.Where(i => i.Keyword == "RUN").Select(i => PublishProject().Match(i.Arguments)).Where(m => m.Success))
        {
            var project = publish.Groups[1].Value;
            Assert.True(instructions.Any(i => i.Keyword == "COPY" && i.Arguments.Contains(Path.GetDirectoryName(project)! + "/", StringComparison.Ordinal)),
                $"{dockerfile}: publishes {project} without copying it");
            Assert.True(File.Exists(Path.Combine(Helm.RepoRoot, project)), $"{dockerfile}: no project {project}");
        }
    }

    [Theory]
    [MemberData(nameof(Dockerfiles))]
    public void Every_published_project_has_every_project_it_references_copied_into_its_stage(string dockerfile)
    {
        var instructions = Parse(dockerfile);
        foreach (var run in instructions.Where(i => i.Keyword == "RUN"))
        {
            if (PublishProject().Match(run.Arguments) is not { Success: true } publish)
            {
                continue;
            }

            var copied = instructions.Where(i => i.Keyword == "COPY" && i.Stage == run.Stage)
                .SelectMany(i => i.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1]).ToList();
            foreach (var folder in ProjectGraph.ReferencedFolders(publish.Groups[1].Value))
            {
                Assert.True(copied.Contains(folder + "/"), $"{dockerfile}: publishes {publish.Groups[1].Value}, which needs {folder}/, not copied into its stage");
            }
        }
    }

    [Theory]
    [InlineData("workloads/mmc-queue/Dockerfile")]
    [InlineData("workloads/pi-monte-carlo/Dockerfile")]
    public void A_workload_image_carries_the_results_wrapper_for_aws_batch(string dockerfile)
    {
        var instructions = Parse(dockerfile);
        var wrapper = Assert.Single(instructions, i => i.Keyword == "COPY" && i.Arguments.EndsWith(" /opt/batchrunner/batchrunner-exec", StringComparison.Ordinal));
        Assert.StartsWith("--from=", wrapper.Arguments, StringComparison.Ordinal);
        Assert.Contains(instructions, i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish controller/BatchRunner.Exec/BatchRunner.Exec.csproj", StringComparison.Ordinal));

        // The command is the one the examples give spec.command, so a BatchJob runs the same thing on every backend.
        var name = Path.GetFileName(Path.GetDirectoryName(dockerfile))!;
        Assert.Equal($"[\"dotnet\", \"workloads/bin/{name}/{name}.dll\"]", instructions.Single(i => i.Keyword == "CMD").Arguments);
    }

    [Fact]
    public void The_controller_image_carries_the_wrapper_the_kubernetes_init_container_runs()
    {
        var instructions = Parse("controller/BatchRunner.Controller/Dockerfile");
        var last = instructions.Where(i => i.Keyword == "FROM").Count() - 1;
        var wrapper = Assert.Single(instructions, i => i.Keyword == "COPY" && i.Stage == last && i.Arguments.EndsWith(" " + BatchRunner.Kubernetes.Dispatch.ResultsCollection.ImagePath, StringComparison.Ordinal));
        var stage = wrapper.Arguments.Split(' ')[0]["--from=".Length..];
        var publish = Assert.Single(instructions, i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish controller/BatchRunner.Exec/BatchRunner.Exec.csproj", StringComparison.Ordinal));
        Assert.Equal($"AS {stage}", string.Join(' ', instructions.First(i => i.Keyword == "FROM" && i.Stage == publish.Stage).Arguments.Split(' ')[^2..]));
        // -a (a runtime identifier) makes the project's SelfContained and PublishSingleFile apply: one file, no runtime needed.
        Assert.Contains("-a $TARGETARCH", publish.Arguments, StringComparison.Ordinal);
        Assert.EndsWith($"/batchrunner-exec {BatchRunner.Kubernetes.Dispatch.ResultsCollection.ImagePath}", wrapper.Arguments, StringComparison.Ordinal);
    }

    [Fact]
    public void The_script_builds_every_image_under_the_names_the_chart_and_the_examples_use()
    {
        var script = File.ReadAllText(Path.Combine(Helm.RepoRoot, "charts", "build-images.sh"));
        var entries = ImageEntry().Matches(script).ToDictionary(m => m.Groups[2].Value, m => m.Groups[1].Value);

        Assert.Equal(AllDockerfiles.Order(StringComparer.Ordinal), entries.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("batchrunner/controller", entries["controller/BatchRunner.Controller/Dockerfile"]);
        var chartImage = Helm.Str(Assert.Single(ManifestFiles.Load(File.ReadAllText(Path.Combine(Helm.ChartPath, "values.yaml"))))["image"]!["repository"]);
        Assert.Equal(chartImage, entries["controller/BatchRunner.Controller/Dockerfile"]);
        foreach (var example in Directory.GetFiles(Path.Combine(Helm.RepoRoot, "manifests", "examples"), "*.yaml"))
        {
            var image = Helm.Str(ManifestFiles.Load(File.ReadAllText(example)).Single()["spec"]!["image"]);
            if (image is not null && image.StartsWith("batchrunner/", StringComparison.Ordinal))
            {
                Assert.Contains(image[..image.LastIndexOf(':')], entries.Values);
            }
        }

        // The script is valid bash and refuses what it does not know, before needing Docker.
        Assert.Equal(0, Bash("-n", "charts/build-images.sh").ExitCode);
        var unknown = Bash("charts/build-images.sh", "--colour");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("unknown argument --colour", unknown.Error, StringComparison.Ordinal);
        var pushNowhere = Bash("charts/build-images.sh", "--push");
        Assert.Equal(2, pushNowhere.ExitCode);
        Assert.Contains("--push needs --registry", pushNowhere.Error, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Loading_into_minikube_gives_each_image_the_examples_latest_tag_too()
    {
        // docker and minikube stand-ins that record their arguments: what the script asks of them is what is checked.
        var bin = Directory.CreateTempSubdirectory("batchrunner-build-images-");
        try
        {
            var log = Path.Combine(bin.FullName, "calls.txt");
            foreach (var tool in new[] { "docker", "minikube" })
            {
                var path = Path.Combine(bin.FullName, tool);
                File.WriteAllText(path, $"#!/bin/sh\necho \"{tool} $*\" >> '{log}'\n");
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            var result = Bash(new Dictionary<string, string> { ["PATH"] = $"{bin.FullName}:{Environment.GetEnvironmentVariable("PATH")}" }, "charts/build-images.sh");
            Assert.True(result.ExitCode == 0, result.Error);
            var loaded = File.ReadAllLines(log).Where(l => l.StartsWith("minikube image load ", StringComparison.Ordinal)).Select(l => l["minikube image load ".Length..]).ToList();
            foreach (var name in new[] { "batchrunner/controller", "batchrunner/mmc-queue", "batchrunner/pi-monte-carlo" })
            {
                Assert.Contains($"{name}:dev", loaded);
                Assert.Contains($"{name}:latest", loaded);
            }

            // Pushing to a registry tags nothing else.
            File.Delete(log);
            Assert.Equal(0, Bash(new Dictionary<string, string> { ["PATH"] = $"{bin.FullName}:{Environment.GetEnvironmentVariable("PATH")}" }, "charts/build-images.sh", "--registry", "r.example", "--tag", "1.0", "--push").ExitCode);
            Assert.DoesNotContain(File.ReadAllLines(log), l => l.Contains(":latest", StringComparison.Ordinal));
        }
        finally
        {
            bin.Delete(recursive: true);
        }
    }

    /// <summary>Dockerfile instructions (continuations joined, comments dropped), each with its stage's number.</summary>
    private static List<Instruction> Parse(string dockerfile)
    {
        var lines = File.ReadAllLines(Path.Combine(Helm.RepoRoot, dockerfile));
        var logical = new List<string>();
        var current = "";
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.StartsWith('#') || (line.Length == 0 && current.Length == 0))
            {
                continue;
            }

            current = current.Length == 0 ? line : $"{current} {line}";
            if (current.EndsWith('\\'))
            {
                current = current[..^1].TrimEnd();
                continue;
            }

            logical.Add(current);
            current = "";
        }

        var stage = -1;
        var result = new List<Instruction>();
        foreach (var text in logical)
        {
            var space = text.IndexOf(' ');
            var keyword = text[..space].ToUpperInvariant();
            if (keyword == "FROM")
            {
                stage++;
            }

            result.Add(new Instruction(keyword, Regex.Replace(text[(space + 1)..].Trim(), @"\s+", " "), stage));
        }

        return result;
    }

    /// <summary>Whether a .dockerignore allow-list lets <paramref name="path"/> in (the last matching line decides).</summary>
    private static bool Allowed(List<string> ignore, string path)
    {
        var allowed = true;
        foreach (var line in ignore)
        {
            var negate = line.StartsWith('!');
            var pattern = (negate ? line[1..] : line).TrimEnd('/');
            var regex = "^" + Regex.Escape(pattern).Replace(@"\*\*/", "(.*/)?", StringComparison.Ordinal).Replace(@"\*", "[^/]*", StringComparison.Ordinal) + "(/.*)?$";
            if (Regex.IsMatch(path.TrimEnd('/'), regex))
            {
                allowed = negate;
            }
        }

        // A folder passes when some allowed pattern lies beneath it (its allowed files are sent).
        return allowed || ignore.Any(l => l.StartsWith('!') && l[1..].StartsWith(path.TrimEnd('/') + "/", StringComparison.Ordinal));
    }

    private static (int ExitCode, string Error) Bash(params string[] args) => Bash(new Dictionary<string, string>(), args);

    private static (int ExitCode, string Error) Bash(Dictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("bash") { WorkingDirectory = Helm.RepoRoot, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, error.Result);
    }

    [GeneratedRegex(@"dotnet publish (\S+\.csproj)")]
    private static partial Regex PublishProject();

    [GeneratedRegex("\"(batchrunner/[a-z-]+) ([^\"]+/Dockerfile)\"")]
    private static partial Regex ImageEntry();
}
