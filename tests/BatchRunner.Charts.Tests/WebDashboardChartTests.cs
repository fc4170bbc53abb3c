namespace BatchRunner.Charts.Tests;

/// <summary>The controller's web dashboard in the chart: on by default, its settings reach the controller, the NOTES say how to open it.</summary>
public sealed class WebDashboardChartTests
{
    [Fact]
    public void The_dashboard_is_on_by_default_and_the_notes_say_how_to_reach_it()
    {
        var env = ChartRenderTests.Env(Helm.Single(Helm.Render().Objects(), "Deployment", "batchrunner-controller")["spec"]!["template"]!["spec"]!["containers"]![0]!);
        Assert.Equal(("true", "2"), (Helm.Str(env["BatchRunner__Dashboard__Enabled"]["value"]), Helm.Str(env["BatchRunner__Dashboard__RefreshSeconds"]["value"])));

        var notes = Helm.Render("--notes").Output;
        Assert.Contains("kubectl -n batchrunner-system port-forward deployment/batchrunner-controller 8080   # then open http://localhost:8080/ui/", notes, StringComparison.Ordinal);
    }

    [Fact]
    public void Switched_off_the_controller_is_told_and_the_notes_say_nothing_of_it()
    {
        var env = ChartRenderTests.Env(Helm.Single(Helm.Render("--set", "dashboard.enabled=false").Objects(), "Deployment", "batchrunner-controller")["spec"]!["template"]!["spec"]!["containers"]![0]!);
        Assert.Equal("false", Helm.Str(env["BatchRunner__Dashboard__Enabled"]["value"]));
        Assert.DoesNotContain("/ui/", Helm.Render("--notes", "--set", "dashboard.enabled=false").Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dashboard.refreshSeconds=0")]
    [InlineData("dashboard.enabled=maybe")]
    [InlineData("dashboard.colour=blue")]
    public void Dashboard_values_out_of_form_are_refused_by_the_schema(string value)
    {
        var rendering = Helm.Render("--set", value);
        Assert.NotEqual(0, rendering.ExitCode);
        Assert.Contains("- dashboard", rendering.Error, StringComparison.Ordinal);
    }
}
