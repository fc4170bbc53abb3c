using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace BatchRunner.Controller.Hosting;

/// <summary>Liveness: unhealthy once a hosted service faulted (the pod restarts).</summary>
public sealed class LivenessCheck(ControllerState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(state.Faulted is { } reason ? HealthCheckResult.Unhealthy(reason) : HealthCheckResult.Healthy("ok"));
}

/// <summary>
/// Readiness: a leader once its caches synced, or a standby (which serves probes and metrics and takes over at
/// once); the description says which, and who leads.
/// </summary>
public sealed class ReadinessCheck(ControllerState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(state.IsReady ? HealthCheckResult.Healthy($"ok: {state.Role()}") : HealthCheckResult.Unhealthy(state.NotReadyReason));
}

/// <summary>The probes' endpoints: one check each, answered with its description as plain text.</summary>
public static class ControllerHealthChecks
{
    public const string Live = "live";
    public const string Ready = "ready";

    public static IHealthChecksBuilder AddControllerHealthChecks(this IServiceCollection services) =>
        services.AddHealthChecks()
            .AddCheck<LivenessCheck>(Live, tags: [Live])
            .AddCheck<ReadinessCheck>(Ready, tags: [Ready]);

    public static HealthCheckOptions Endpoint(string tag, int unhealthyStatus) => new()
    {
        Predicate = check => check.Tags.Contains(tag),
        ResultStatusCodes =
        {
            [HealthStatus.Healthy] = StatusCodes.Status200OK,
            [HealthStatus.Degraded] = StatusCodes.Status200OK,
            [HealthStatus.Unhealthy] = unhealthyStatus,
        },
        ResponseWriter = (context, report) =>
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            return context.Response.WriteAsync(string.Join('\n', report.Entries.Values.Select(e => e.Description)));
        },
    };
}
