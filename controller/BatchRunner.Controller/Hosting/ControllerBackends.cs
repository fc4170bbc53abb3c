using BatchRunner.Backends;
using BatchRunner.Core.Spec;
using BatchRunner.Kubernetes.Controller;
using Microsoft.Extensions.Options;

namespace BatchRunner.Controller.Hosting;

/// <summary>
/// The backends this controller has, for every door: its own (Kubernetes Jobs on a cluster, local processes
/// without one) and the ones registered with it as <see cref="IBatchBackend"/> services (AWS Batch when enabled,
/// or any other), plus those it knows but does not run, with why. The SQS door refuses a request naming another
/// before recording it; the operator and the local runner resolve each BatchJob's backend here.
/// </summary>
public sealed class ControllerBackends(IOptions<KubernetesOptions> kubernetes, IEnumerable<IBatchBackend> registered, IEnumerable<DisabledBackend> disabled)
{
    public const string Host = "this controller";

    /// <summary>The backend the controller itself runs: Kubernetes with a cluster, local processes without one.</summary>
    public Backend Own => kubernetes.Value.Enabled ? Backend.Kubernetes : Backend.Local;

    /// <summary>The backends registered besides its own.</summary>
    public IReadOnlyList<IBatchBackend> Others { get; } = registered.ToList();

    public IReadOnlyList<DisabledBackend> Disabled { get; } = kubernetes.Value.Enabled
        ? [.. disabled, BatchJobReconciler.LocalBesideOperator]
        : [.. disabled, new DisabledBackend(Backend.Kubernetes, "this controller runs without a cluster (BatchRunner:Kubernetes:Enabled=false)")];

    /// <summary>The registry of this controller, with its own backend made by <paramref name="own"/> when first asked for.</summary>
    public BackendRegistry Registry(Func<IBatchBackend> own) =>
        new(Host, [(Own, own), .. Others.Select(b => (b.Backend, (Func<IBatchBackend>)(() => b)))], Disabled);

    // Built once (a benign race builds the same twice); a door only checks names, so it never makes the own backend.
    private BackendRegistry? _names;

    /// <summary>Why a request naming <paramref name="backend"/> is refused at a door, or null.</summary>
    public SpecError? Refuse(Backend backend) =>
        (_names ??= Registry(() => throw new InvalidOperationException("a door only checks names"))).Check(backend);
}
