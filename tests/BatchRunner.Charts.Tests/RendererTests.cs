namespace BatchRunner.Charts.Tests;

/// <summary>
/// helm-render behaves as Helm 3's `helm template` where a chart can tell (TestCharts/probe exercises each):
/// values coalescing, the function set, errors, ordering, crds/, hooks and NOTES.txt.
/// </summary>
public class RendererTests
{
    private static readonly string Probe = Path.Combine(AppContext.BaseDirectory, "TestCharts", "probe");

    private static Dictionary<string, string?> Spec(params string[] args)
    {
        var objects = Helm.RenderChart(Probe, args).Objects();
        var probe = Helm.Single(objects, "Probe", "probe");
        return probe["spec"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value is System.Text.Json.Nodes.JsonValue ? kv.Value.ToString() : kv.Value?.ToJsonString());
    }

    [Fact]
    public void Templates_see_values_release_chart_capabilities_and_template_as_in_helm()
    {
        var spec = Spec();

        Assert.Equal("", spec["missing"]); // a missing key renders as nothing, not "<no value>"
        Assert.Equal("hello world", spec["included"]);
        Assert.Equal("kept-release-name", spec["tpl"]);
        Assert.Equal("{\"a\":1,\"b\":2}", spec["nested"]);
        Assert.Equal("0", spec["lookup"]); // no cluster: lookup finds nothing
        Assert.Equal("True", spec["hasApps"], ignoreCase: true);
        Assert.Equal("False", spec["hasMonitoring"], ignoreCase: true);
        Assert.Equal("v1.31.0/31", spec["kube"]);
        Assert.Equal("release-name/default/Helm/true", spec["release"]);
        Assert.Equal("probe/1.2.3/4.5", spec["chart"]);
        Assert.Equal("probe/templates/probe.yaml", spec["template"]);
    }

    [Fact]
    public void Values_files_are_numbers_as_floats_and_set_integers_as_int64_as_in_helm()
    {
        // Helm reads values files through JSON: 1000000 is a float64 and prints as 1e+06 (the reason the chart
        // converts numbers with int64 before quoting them).
        var spec = Spec();
        Assert.Equal("1e+06", spec["big"]);
        Assert.Equal("float64", spec["bigKind"]);

        Assert.Equal("int64", Spec("--set", "set=7")["setKind"]);
        Assert.Equal("string", Spec("--set", "set=0.5")["setKind"]); // --set types integers only
        Assert.Equal("string", Spec("--set-string", "set=7")["setKind"]);
        Assert.Equal("bool", Spec("--set", "set=true")["setKind"]);
    }

    [Fact]
    public void A_null_from_the_user_removes_a_default_and_later_files_win()
    {
        var first = WriteTemp("defaults:\n  drop: null\n  keep: first\n");
        var second = WriteTemp("defaults:\n  keep: second\n");
        try
        {
            var spec = Spec("-f", first, "-f", second);
            Assert.Equal("false", spec["hasDrop"], ignoreCase: true);
            Assert.Equal("second", spec["keep"]);
            Assert.Equal("third", Spec("-f", first, "-f", second, "--set", "defaults.keep=third")["keep"]);
            Assert.Equal("true", Spec()["hasDrop"], ignoreCase: true);
        }
        finally
        {
            File.Delete(first);
            File.Delete(second);
        }
    }

    [Fact]
    public void Capabilities_follow_the_kube_version_and_api_versions_given()
    {
        var spec = Spec("--kube-version", "1.25.3", "--api-versions", "monitoring.coreos.com/v1", "--release-name", "r", "--namespace", "ns");

        Assert.Equal("v1.25.3/25", spec["kube"]);
        Assert.Equal("true", spec["hasMonitoring"], ignoreCase: true);
        Assert.Equal("r/ns/Helm/true", spec["release"]);
    }

    [Fact]
    public void Manifests_come_in_helms_install_order_with_crds_first_as_written_and_hooks_last()
    {
        var rendering = Helm.RenderChart(Probe, "--include-crds");
        var kinds = rendering.Objects().Select(o => Helm.Str(o["kind"])).ToList();

        // Namespace before Service whatever the file names; unknown kinds after known ones; the hook last.
        Assert.Equal(["CustomResourceDefinition", "Namespace", "Service", "Probe", "Job"], kinds);
        Assert.Contains("# {{ not a template: crds/ is installed as it is }}", rendering.Output, StringComparison.Ordinal);
        Assert.Contains("# Source: probe/templates/zz-namespace.yaml", rendering.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("never", rendering.Output, StringComparison.Ordinal); // an empty document is dropped
        Assert.DoesNotContain("Notes of", rendering.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("CustomResourceDefinition", Helm.RenderChart(Probe).Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Notes_render_apart()
    {
        var notes = Helm.RenderChart(Probe, "--notes", "--release-name", "r");

        Assert.Equal(0, notes.ExitCode);
        Assert.Equal("Notes of r: kept\n", notes.Output);
    }

    [Fact]
    public void Failures_are_worded_as_helm_words_them()
    {
        var required = Helm.RenderChart(Probe, "--set", "mustHave=null");
        Assert.Equal(1, required.ExitCode);
        Assert.Equal("Error: execution error at (probe/templates/_helpers.tpl:5:3): mustHave is required\n", required.Error);

        var schema = Helm.RenderChart(Probe, "--set", "big=abc");
        Assert.Equal("Error: values don't meet the specifications of the schema(s) in the following chart(s):\nprobe:\n- big: Invalid type. Expected: number, given: string\n", schema.Error);

        var tooOld = Helm.RenderChart(Probe, "--kube-version", "1.19.0");
        Assert.Contains("chart requires kubeVersion: >=1.20.0-0 which is incompatible with Kubernetes v1.19.0", tooOld.Error, StringComparison.Ordinal);

        // Helm takes env and expandenv out of sprig: a chart cannot read the installer's environment.
        var file = WriteTemp("text: '{{ env \"HOME\" }}'\n");
        try
        {
            var env = Helm.RenderChart(Probe, "-f", file);
            Assert.Equal(1, env.ExitCode);
            Assert.Contains("function \"env\" not defined", env.Error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void The_lint_finds_a_key_written_twice()
    {
        Helm.AssertNoDuplicateKeys("a: 1\nb: {c: 1, d: [{c: 2}, {c: 3}]}\n---\na: 2\n");
        var twice = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => Helm.AssertNoDuplicateKeys("a: 1\nb:\n  c: 1\n  d: [x]\n  c: 2\n"));
        Assert.Contains("key 'c' appears twice", twice.Message, StringComparison.Ordinal);
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => Helm.AssertNoDuplicateKeys("---\nok: 1\n---\nenv:\n- name: A\n  name: B\n"));
    }

    private static string WriteTemp(string text)
    {
        var file = Path.Combine(Path.GetTempPath(), $"batchrunner-probe-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(file, text);
        return file;
    }
}
