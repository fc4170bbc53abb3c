namespace BatchRunner.Controller.Hosting;

/// <summary>What the health endpoints report: set by the hosted services, read by the probes.</summary>
public sealed class ControllerState
{
    private volatile string? _faulted;

    /// <summary>Null while healthy; else why the controller is not (the liveness probe fails, the pod restarts).</summary>
    public string? Faulted => _faulted;

    /// <summary>A standby replica is ready; a leader is ready once its caches have synced.</summary>
    public Func<bool> OperatorReady { get; set; } = () => true;

    public bool IsReady => _faulted is null && OperatorReady();

    /// <summary>This replica's part in leader election, for the readiness answer: leader, standby (and who leads), or off.</summary>
    public Func<string> Role { get; set; } = () => "leader election off";

    public string NotReadyReason => _faulted ?? "caches not synced yet";

    public void Fault(string reason) => _faulted = reason;
}
