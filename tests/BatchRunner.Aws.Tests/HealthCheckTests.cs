using BatchRunner.Controller.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xunit;

namespace BatchRunner.Aws.Tests;

/// <summary>The probes' answers as functions of the controller's state (the endpoints are exercised by the process tests).</summary>
public sealed class HealthCheckTests
{
    public static TheoryData<string?, bool, string, HealthStatus, string, HealthStatus, string> States => new()
    {
        // faulted, caches synced, role → liveness, its text, readiness, its text
        { null, true, "leader", HealthStatus.Healthy, "ok", HealthStatus.Healthy, "ok: leader" },
        { null, true, "standby, waiting to lead (leader: a)", HealthStatus.Healthy, "ok", HealthStatus.Healthy, "ok: standby, waiting to lead (leader: a)" },
        { null, false, "leader", HealthStatus.Healthy, "ok", HealthStatus.Unhealthy, "caches not synced yet" },
        { "the SQS consumer stopped", true, "leader", HealthStatus.Unhealthy, "the SQS consumer stopped", HealthStatus.Unhealthy, "the SQS consumer stopped" },
    };

    [Theory]
    [MemberData(nameof(States))]
    public async Task Liveness_and_readiness_follow_the_controller_state(
        string? faulted, bool synced, string role, HealthStatus live, string liveText, HealthStatus ready, string readyText)
    {
        var state = new ControllerState { OperatorReady = () => synced, Role = () => role };
        if (faulted is not null)
        {
            state.Fault(faulted);
        }

        var liveness = await new LivenessCheck(state).CheckHealthAsync(new HealthCheckContext());
        var readiness = await new ReadinessCheck(state).CheckHealthAsync(new HealthCheckContext());

        Assert.Equal((live, liveText), (liveness.Status, liveness.Description));
        Assert.Equal((ready, readyText), (readiness.Status, readiness.Description));
    }

    [Theory]
    [InlineData(ControllerHealthChecks.Live, StatusCodes.Status500InternalServerError)]
    [InlineData(ControllerHealthChecks.Ready, StatusCodes.Status503ServiceUnavailable)]
    public void An_unhealthy_probe_answers_with_its_own_status_code_and_only_its_own_check(string tag, int unhealthy)
    {
        var options = ControllerHealthChecks.Endpoint(tag, unhealthy);

        Assert.Equal(unhealthy, options.ResultStatusCodes[HealthStatus.Unhealthy]);
        Assert.Equal(StatusCodes.Status200OK, options.ResultStatusCodes[HealthStatus.Healthy]);
        Assert.True(options.Predicate!(new HealthCheckRegistration(tag, _ => null!, null, [tag])));
        Assert.False(options.Predicate!(new HealthCheckRegistration("other", _ => null!, null, ["other"])));
    }
}
