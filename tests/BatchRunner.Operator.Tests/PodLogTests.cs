using BatchRunner.Kubernetes.Testing;
using k8s;
using k8s.Models;
using Xunit;

namespace BatchRunner.Operator.Tests;

/// <summary>
/// <c>batchrunner logs --cluster</c> on a real control plane: the log of the pod that runs an index comes through the
/// API server's log proxy from a kubelet (a stand-in serving what the pod's process writes, as it writes it, with the
/// serving certificate the API server checks), followed while the pod runs and ending when it ends.
/// </summary>
[Collection(ControlPlaneCollection.Name)]
public sealed class PodLogTests(OperatorFixture fixture) : IAsyncLifetime
{
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(60);
    private readonly string _ns = "logs-" + Guid.NewGuid().ToString("N")[..10];
    private readonly string _scratch = Directory.CreateTempSubdirectory("operator-logs-").FullName;

    public async Task InitializeAsync() => await fixture.ControlPlane.CreateNamespaceAsync(_ns);

    public Task DisposeAsync()
    {
        Directory.Delete(_scratch, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>A Job as BatchRunner makes one: its pods carry the BatchJob's label; each says it started, waits for the test's word, and says it is done.</summary>
    private V1Job Job() => new()
    {
        Metadata = new V1ObjectMeta { Name = "sweep-r1", NamespaceProperty = _ns },
        Spec = new V1JobSpec
        {
            Completions = 2,
            Parallelism = 2,
            BackoffLimit = 0,
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { [BatchRunner.Core.Runs.WorkloadLabels.BatchJob] = "sweep" } },
                Spec = new V1PodSpec
                {
                    RestartPolicy = "Never",
                    Containers =
                    [
                        new V1Container
                        {
                            Name = "index",
                            Image = "busybox:1.36",
                            Command = ["/bin/sh", "-c", "echo \"started $JOB_COMPLETION_INDEX\"; echo \"to stderr $JOB_COMPLETION_INDEX\" >&2; while [ ! -e \"$SCRATCH/go\" ]; do sleep 0.05; done; echo \"done $JOB_COMPLETION_INDEX\""],
                            Env = [new V1EnvVar { Name = "SCRATCH", Value = _scratch }],
                        },
                    ],
                },
            },
        },
    };

    /// <summary>The CLI in this process against the control plane, as <see cref="OperatorFixture.CliAsync"/> but with its exit code and writers of the test's own.</summary>
    private async Task<int> CliAsync(TextWriter stdout, TextWriter stderr, params string[] args)
    {
        var before = Environment.GetEnvironmentVariable("KUBECONFIG");
        Environment.SetEnvironmentVariable("KUBECONFIG", fixture.ControlPlane.AdminKubeconfigPath);
        try
        {
            return await BatchRunner.Cli.CliApplication.RunAsync(args, stdout, stderr);
        }
        finally
        {
            Environment.SetEnvironmentVariable("KUBECONFIG", before);
        }
    }

    /// <summary>
    /// A writer another thread writes to, and what it holds so far: TextWriter.Synchronized locks each call on the
    /// wrapper itself, so reading under the same lock sees whole writes.
    /// </summary>
    private sealed class SharedText : IDisposable
    {
        private readonly StringWriter _text = new();

        public SharedText() => Writer = TextWriter.Synchronized(_text);

        public TextWriter Writer { get; }

        public override string ToString()
        {
            lock (Writer)
            {
                return _text.ToString();
            }
        }

        public void Dispose() => _text.Dispose();
    }

    [Fact]
    public async Task The_log_of_a_running_index_streams_from_its_pod_through_the_api_server_until_the_pod_ends()
    {
        await using var kubelet = await StandInKubelet.StartAsync(fixture.ControlPlane);
        await using var pods = PodSimulator.Start(fixture.Admin, new PodSimulatorOptions
        {
            Namespace = _ns, Outcome = _ => PodOutcome.RunCommand, Kubelet = kubelet, NumberCompletionIndexes = true,
        });
        await fixture.Admin.BatchV1.CreateNamespacedJobAsync(Job(), _ns);
        await Eventually.TrueAsync(async () => (await fixture.Admin.CoreV1.ListNamespacedPodAsync(_ns)).Items.Count(p => p.Status?.Phase == "Running") == 2,
            Converge, "both pods run");

        using var printed = new SharedText();
        using var complaints = new SharedText();
        var following = CliAsync(printed.Writer, complaints.Writer, "logs", "sweep", "-n", _ns, "--index", "1", "--cluster", "--follow");
        await Eventually.TrueAsync(() => Task.FromResult(printed.ToString().Contains("started 1", StringComparison.Ordinal)), Converge,
            $"the followed log shows what index 1 wrote so far (errors: {complaints.ToString()})");
        Assert.DoesNotContain("done", printed.ToString(), StringComparison.Ordinal);
        Assert.False(following.IsCompleted, "following ends only when the pod does");

        await File.WriteAllTextAsync(Path.Combine(_scratch, "go"), "");
        var code = await following.WaitAsync(Converge);

        Assert.True(code == 0, complaints.ToString());
        var lines = printed.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // Standard output and error come through two pipes into the one log, so only each stream's own order is certain.
        Assert.Equal(["done 1", "started 1", "to stderr 1"], lines.Order(StringComparer.Ordinal));
        Assert.True(Array.IndexOf(lines, "started 1") < Array.IndexOf(lines, "done 1"), string.Join('|', lines));
        Assert.Empty(pods.Errors);
    }

    [Fact]
    public async Task A_finished_index_has_its_log_while_its_pod_is_there_and_what_is_not_there_is_refused_by_name()
    {
        await using var kubelet = await StandInKubelet.StartAsync(fixture.ControlPlane);
        await using var pods = PodSimulator.Start(fixture.Admin, new PodSimulatorOptions
        {
            Namespace = _ns, Outcome = _ => PodOutcome.RunCommand, Kubelet = kubelet, NumberCompletionIndexes = true,
        });
        await File.WriteAllTextAsync(Path.Combine(_scratch, "go"), "");
        await fixture.Admin.BatchV1.CreateNamespacedJobAsync(Job(), _ns);
        await Eventually.TrueAsync(async () => (await fixture.Admin.CoreV1.ListNamespacedPodAsync(_ns)).Items.Count(p => p.Status?.Phase == "Succeeded") == 2,
            Converge, "both pods succeed");

        var (log, missing, attempt) = (new StringWriter(), new StringWriter(), new StringWriter());
        var why = new StringWriter();
        var shown = await CliAsync(log, why, "logs", "sweep", "-n", _ns, "--index", "0", "--cluster");
        var notThere = await CliAsync(TextWriter.Null, missing, "logs", "sweep", "-n", _ns, "--index", "7", "--cluster");
        var noSuchAttempt = await CliAsync(TextWriter.Null, attempt, "logs", "sweep", "-n", _ns, "--index", "0", "--attempt", "2", "--cluster");

        Assert.True(shown == 0, why.ToString());
        Assert.Equal(["done 0", "started 0", "to stderr 0"], log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Equal(2, notThere);
        Assert.StartsWith($"logs: no pod of sweep index 7 in namespace {_ns} in the cluster", missing.ToString(), StringComparison.Ordinal);
        Assert.Equal(2, noSuchAttempt);
        Assert.Contains("--attempt 2: sweep index 0", attempt.ToString(), StringComparison.Ordinal);
        Assert.Empty(pods.Errors);
    }
}
