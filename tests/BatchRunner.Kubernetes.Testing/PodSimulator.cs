using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace BatchRunner.Kubernetes.Testing;

/// <summary>How a simulated Pod ends: with an exit code, or with the exit code of its command run locally.</summary>
public sealed class PodOutcome
{
    private PodOutcome(int exitCode, bool runsCommand)
    {
        ExitCode = exitCode;
        RunsCommand = runsCommand;
    }

    /// <summary>Every container exits with 0: the Pod Succeeds.</summary>
    public static PodOutcome Succeed { get; } = new(0, false);

    /// <summary>
    /// The first container's command and args run as a local process (see <see cref="PodSimulator"/>); its exit
    /// code decides.
    /// </summary>
    public static PodOutcome RunCommand { get; } = new(0, true);

    /// <summary>The exit code every container ends with (unless <see cref="RunsCommand"/>).</summary>
    public int ExitCode { get; }

    /// <summary>Whether the exit code comes from running the Pod's command.</summary>
    public bool RunsCommand { get; }

    /// <summary>Every container exits with <paramref name="exitCode"/> (not 0): the Pod Fails.</summary>
    public static PodOutcome Fail(int exitCode = 1) =>
        exitCode != 0 ? new(exitCode, false) : throw new ArgumentOutOfRangeException(nameof(exitCode), "a failure exits with non-zero");
}

/// <summary>What a <see cref="PodSimulator"/> watches and how it decides.</summary>
public sealed class PodSimulatorOptions
{
    /// <summary>The namespace to watch; null watches every namespace.</summary>
    public string? Namespace { get; init; }

    /// <summary>Decides each Pod's outcome when it starts running. The default: every Pod succeeds.</summary>
    public Func<V1Pod, PodOutcome> Outcome { get; init; } = _ => PodOutcome.Succeed;

    /// <summary>How long a Pod stays Pending before it runs, as a kubelet pulling an image would. Default: no time.</summary>
    public TimeSpan PendingFor { get; init; } = TimeSpan.Zero;

    /// <summary>How long a Pod stays Running before it ends (not used when its command runs). Default: no time.</summary>
    public TimeSpan RunningFor { get; init; } = TimeSpan.Zero;

    /// <summary>The working directory of commands run by <see cref="PodOutcome.RunCommand"/>; default the current one.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>
    /// A kubelet stand-in to bind each Pod to before it runs: what its command writes (standard output and error, as
    /// they come) is then its container's log through the API server. Null: Pods stay unbound and have no log.
    /// </summary>
    public StandInKubelet? Kubelet { get; init; }

    /// <summary>
    /// Gives each Pod of a Job the completion-index annotation an Indexed Job's pods have from Kubernetes 1.21 (the
    /// 1.20 control plane gives none), numbered per Job in the order the Pods are seen.
    /// </summary>
    public bool NumberCompletionIndexes { get; init; }
}

/// <summary>
/// Plays the kubelet for a control plane that has none: it watches Pods and moves every Pending one (not being
/// deleted) to Running and then to Succeeded or Failed, through the <c>status</c> subresource, with a start time
/// and a running then terminated state (exit code, reason, start and finish times) for each container. The Job
/// controller counts such Pods as it counts real ones. Every Pod is treated as <c>restartPolicy: Never</c>.
/// <para>
/// With <see cref="PodOutcome.RunCommand"/>, the first container's <c>command</c> + <c>args</c> run as a local
/// process (not in the image: the command must exist on this machine), with this process's environment plus
/// the container's <c>env</c>: literal values, <c>fieldRef</c>s to the Pod's name, namespace, uid, labels and
/// annotations, and <c>JOB_COMPLETION_INDEX</c> from the annotation
/// <c>batch.kubernetes.io/job-completion-index</c> when present. <c>$(VAR)</c> in command and args expands as
/// the kubelet does. A failed process's standard error (its tail) becomes the container's termination message.
/// </para>
/// </summary>
public sealed partial class PodSimulator : IAsyncDisposable
{
    /// <summary>The annotation Indexed Jobs (Kubernetes 1.21 and later) put on each Pod.</summary>
    public const string CompletionIndexAnnotation = "batch.kubernetes.io/job-completion-index";

    private const int MessageLimit = 2048;

    private readonly IKubernetes client;
    private readonly PodSimulatorOptions options;
    private readonly CancellationTokenSource stopping = new();
    private readonly ConcurrentDictionary<string, Task> pods = new();
    private readonly ConcurrentQueue<Exception> errors = new();
    private readonly Task watching;
    private int finished;

    private PodSimulator(IKubernetes client, PodSimulatorOptions options)
    {
        this.client = client;
        this.options = options;
        watching = Task.Run(WatchAsync);
    }

    /// <summary>How many Pods it has moved to Succeeded or Failed.</summary>
    public int Finished => Volatile.Read(ref finished);

    /// <summary>What went wrong while simulating (a Pod deleted meanwhile is not an error). Assert it is empty.</summary>
    public IReadOnlyCollection<Exception> Errors => errors;

    /// <summary>Starts watching Pods with <paramref name="client"/>, which may write the <c>pods/status</c> subresource.</summary>
    public static PodSimulator Start(IKubernetes client, PodSimulatorOptions? options = null) =>
        new(client, options ?? new PodSimulatorOptions());

    /// <summary>Stops watching, kills commands still running, and waits for all of it.</summary>
    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        await Task.WhenAll(pods.Values.Append(watching));
        stopping.Dispose();
    }

    private async Task WatchAsync()
    {
        var token = stopping.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                // List, then watch from the list's version; whenever the watch ends (timeout, 410 Gone, a broken
                // connection), list again. Pods seen twice are simulated once.
                var list = options.Namespace is null
                    ? await client.CoreV1.ListPodForAllNamespacesAsync(cancellationToken: token)
                    : await client.CoreV1.ListNamespacedPodAsync(options.Namespace, cancellationToken: token);
                foreach (var pod in list.Items)
                {
                    Consider(pod);
                }

                var version = list.Metadata.ResourceVersion;
                var events = options.Namespace is null
                    ? client.CoreV1.WatchListPodForAllNamespacesAsync(resourceVersion: version, timeoutSeconds: 300, cancellationToken: token)
                    : client.CoreV1.WatchListNamespacedPodAsync(
                        options.Namespace, resourceVersion: version, timeoutSeconds: 300, cancellationToken: token);
                await foreach (var (type, pod) in events)
                {
                    if (type is WatchEventType.Added or WatchEventType.Modified)
                    {
                        Consider(pod);
                    }
                }
            }
            catch (Exception) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                errors.Enqueue(e);
                await Task.Delay(TimeSpan.FromMilliseconds(200), CancellationToken.None);
            }
        }
    }

    private void Consider(V1Pod pod)
    {
        if (pod.Status?.Phase is null or "Pending" && pod.Metadata.DeletionTimestamp is null && !pods.ContainsKey(pod.Metadata.Uid))
        {
            pods[pod.Metadata.Uid] = Task.Run(() => SimulateAsync(pod, stopping.Token));
        }
    }

    private readonly ConcurrentDictionary<string, int> positions = new(StringComparer.Ordinal);

    private async Task SimulateAsync(V1Pod pod, CancellationToken token)
    {
        StandInKubelet.PodLog? log = null;
        try
        {
            await Task.Delay(options.PendingFor, token);
            if (options.NumberCompletionIndexes && pod.Metadata.Labels?.TryGetValue("job-name", out var jobName) == true
                && pod.Metadata.Annotations?.ContainsKey(CompletionIndexAnnotation) != true)
            {
                var position = positions.AddOrUpdate($"{pod.Namespace()}/{jobName}", 0, (_, p) => p + 1);
                var annotations = new Dictionary<string, string> { [CompletionIndexAnnotation] = position.ToString(System.Globalization.CultureInfo.InvariantCulture) };
                await UntilWrittenAsync(
                    async () => pod = await client.CoreV1.PatchNamespacedPodAsync(
                        new V1Patch(new { metadata = new { annotations } }, V1Patch.PatchType.MergePatch), pod.Name(), pod.Namespace(), cancellationToken: token),
                    token);
            }

            if (options.Kubelet is { } kubelet)
            {
                await kubelet.BindAsync(pod, token);
                log = kubelet.LogOf(pod.Namespace(), pod.Name(), pod.Spec.Containers[0].Name);
            }

            var started = DateTime.UtcNow;
            await PatchStatusAsync(pod, "Running", started, _ => new V1ContainerState
            {
                Running = new V1ContainerStateRunning { StartedAt = started },
            }, token);

            var outcome = options.Outcome(pod);
            var (exitCode, message) = (outcome.ExitCode, (string?)null);
            if (outcome.RunsCommand)
            {
                (exitCode, message) = await RunCommandAsync(pod, log, token);
            }
            else
            {
                await Task.Delay(options.RunningFor, token);
            }

            var finishedAt = DateTime.UtcNow;
            await PatchStatusAsync(pod, exitCode == 0 ? "Succeeded" : "Failed", started, _ => new V1ContainerState
            {
                Terminated = new V1ContainerStateTerminated
                {
                    ExitCode = exitCode,
                    Reason = exitCode == 0 ? "Completed" : "Error",
                    Message = message,
                    StartedAt = started,
                    FinishedAt = finishedAt,
                },
            }, token);
            Interlocked.Increment(ref finished);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // The Pod was deleted while it "ran" (its Job deleted, the namespace removed): nothing to report.
        }
        catch (Exception e)
        {
            errors.Enqueue(new InvalidOperationException($"simulating pod {pod.Namespace()}/{pod.Name()}: {e.Message}", e));
        }
        finally
        {
            log?.Complete();
        }
    }

    private Task PatchStatusAsync(
        V1Pod pod, string phase, DateTime started, Func<V1Container, V1ContainerState> state, CancellationToken token)
    {
        var running = phase == "Running";
        var status = new V1PodStatus
        {
            Phase = phase,
            StartTime = started,
            ContainerStatuses = pod.Spec.Containers.Select(container => new V1ContainerStatus
            {
                Name = container.Name,
                Image = container.Image,
                ImageID = $"simulated://{container.Image}",
                ContainerID = $"simulated://{pod.Metadata.Uid}/{container.Name}",
                Ready = running,
                Started = running,
                RestartCount = 0,
                State = state(container),
            }).ToList(),
        };
        // A merge patch replaces containerStatuses whole, which is what we mean.
        return UntilWrittenAsync(() => client.CoreV1.PatchNamespacedPodStatusAsync(
            new V1Patch(new { status }, V1Patch.PatchType.MergePatch), pod.Name(), pod.Namespace(), cancellationToken: token), token);
    }

    /// <summary>
    /// As the kubelet's status manager: a write the API server did not take (it is down or restarting, it answered
    /// 429 or 5xx) is made again until it is taken, so no pod stays Running because one write met a bad moment.
    /// </summary>
    private static async Task UntilWrittenAsync(Func<Task> write, CancellationToken token)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await write();
                return;
            }
            catch (Exception e) when (!token.IsCancellationRequested && attempt < 120 && (e is HttpRequestException or IOException
                || e is HttpOperationException { Response.StatusCode: HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError }))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 100 * attempt)), token);
            }
        }
    }

    private async Task<(int ExitCode, string? Message)> RunCommandAsync(V1Pod pod, StandInKubelet.PodLog? log, CancellationToken token)
    {
        var container = pod.Spec.Containers[0];
        var environment = new Dictionary<string, string>();
        foreach (var variable in container.Env ?? [])
        {
            var value = variable.Value is { } literal ? Expand(literal, environment) : FieldValue(pod, variable.ValueFrom?.FieldRef?.FieldPath);
            if (value is not null)
            {
                environment[variable.Name] = value;
            }
        }

        if (pod.Metadata.Annotations?.TryGetValue(CompletionIndexAnnotation, out var index) == true)
        {
            environment.TryAdd("JOB_COMPLETION_INDEX", index);
        }

        var command = (container.Command ?? []).Concat(container.Args ?? []).Select(word => Expand(word, environment)).ToList();
        if (command.Count == 0)
        {
            return (127, "the pod simulator runs a container's command, and this container has none");
        }

        var start = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = options.WorkingDirectory ?? "",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        command.Skip(1).ToList().ForEach(start.ArgumentList.Add);
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            return (127, $"{command[0]}: {e.Message}");
        }

        using (process)
        {
            // Lines go to the pod's log as they come (a kubelet keeps both streams in one log); standard error is kept too,
            // for the termination message.
            var output = CopyLinesAsync(process.StandardOutput, log, null);
            var errorText = new StringBuilder();
            var error = CopyLinesAsync(process.StandardError, log, errorText).ContinueWith(_ => errorText.ToString(), TaskScheduler.Default);
            try
            {
                await process.WaitForExitAsync(token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }

            await output;
            var tail = await error;
            return (process.ExitCode, process.ExitCode == 0 || tail.Length == 0 ? null : tail[Math.Max(0, tail.Length - MessageLimit)..]);
        }
    }

    /// <summary>Each line of a stream into the pod's log (when it has one) and into <paramref name="kept"/> (when given).</summary>
    private static async Task CopyLinesAsync(StreamReader reader, StandInKubelet.PodLog? log, StringBuilder? kept)
    {
        while (await reader.ReadLineAsync(CancellationToken.None) is { } line)
        {
            log?.Append(line + "\n");
            kept?.Append(line).Append('\n');
        }
    }

    /// <summary>The kubelet's expansion: $(NAME) of a variable defined before; $$ is a literal $; others stay.</summary>
    private static string Expand(string text, Dictionary<string, string> environment) =>
        VariableReference().Replace(text, match => match.Value == "$$"
            ? "$"
            : environment.TryGetValue(match.Groups[1].Value, out var value) ? value : match.Value);

    private static string? FieldValue(V1Pod pod, string? path)
    {
        if (path is null)
        {
            return null;
        }

        var keyed = KeyedField().Match(path);
        if (keyed.Success)
        {
            var map = keyed.Groups[1].Value == "labels" ? pod.Metadata.Labels : pod.Metadata.Annotations;
            return map?.TryGetValue(keyed.Groups[2].Value, out var value) == true ? value : "";
        }

        return path switch
        {
            "metadata.name" => pod.Name(),
            "metadata.namespace" => pod.Namespace(),
            "metadata.uid" => pod.Metadata.Uid,
            "spec.serviceAccountName" => pod.Spec.ServiceAccountName,
            _ => null,
        };
    }

    [GeneratedRegex(@"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")]
    private static partial Regex VariableReference();

    [GeneratedRegex(@"^metadata\.(labels|annotations)\['(.+)'\]$")]
    private static partial Regex KeyedField();
}
