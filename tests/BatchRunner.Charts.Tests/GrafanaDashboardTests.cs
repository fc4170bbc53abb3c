using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BatchRunner.Aws.Intake;
using BatchRunner.Kubernetes.Controller;
using Prometheus;

namespace BatchRunner.Charts.Tests;

/// <summary>
/// The chart's Grafana dashboard (dashboards/batchrunner.json): every query reads a metric the controller exports,
/// filtered by the dashboard's job; the panels are well formed; the ConfigMap for Grafana's sidecar is rendered only
/// when asked for, carrying the file as it is.
/// </summary>
public partial class GrafanaDashboardTests
{
    private static readonly string DashboardPath = Path.Combine(Helm.ChartPath, "dashboards", "batchrunner.json");

    private static JsonObject Dashboard() => JsonNode.Parse(File.ReadAllText(DashboardPath))!.AsObject();

    /// <summary>Every query of the dashboard: the panels' expressions and the template variables' queries.</summary>
    private static List<(string Where, string Query)> Queries()
    {
        var dashboard = Dashboard();
        var queries = dashboard["panels"]!.AsArray()
            .SelectMany(p => p!["targets"]?.AsArray() ?? [], (p, t) => ($"panel \"{Helm.Str(p!["title"])}\"", Helm.Str(t!["expr"]) ?? ""))
            .ToList();
        queries.AddRange(dashboard["templating"]!["list"]!.AsArray()
            .Where(v => Helm.Str(v!["type"]) == "query")
            .Select(v => ($"variable {Helm.Str(v!["name"])}", Helm.Str(v!["definition"]) ?? "")));
        return queries;
    }

    /// <summary>The series the controller's /metrics can show: each metric of its registries, histograms with their three series.</summary>
    private static HashSet<string> ExportedSeries()
    {
        var registry = Metrics.NewCustomRegistry();
        object[] metricSets = [new ControllerMetrics(registry), new IntakeMetrics(registry)];
        var series = new HashSet<string>(StringComparer.Ordinal);
        foreach (var collector in metricSets.SelectMany(set => set.GetType().GetProperties().Select(p => p.GetValue(set)).OfType<Collector>()))
        {
            series.Add(collector.Name);
            if (collector is Histogram)
            {
                series.UnionWith([collector.Name + "_bucket", collector.Name + "_sum", collector.Name + "_count"]);
            }
        }

        return series;
    }

    [GeneratedRegex(@"\bbatchrunner_[a-z0-9_]+")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"\bbatchrunner_[a-z0-9_]+(?!\{job=~""\$job""[,}])(?![a-z0-9_])")]
    private static partial Regex MetricWithoutJobFilter();

    [Fact]
    public void Every_query_reads_a_metric_the_controller_exports()
    {
        var exported = ExportedSeries();
        var queries = Queries();

        Assert.True(queries.Count >= 20, $"{queries.Count} queries");
        foreach (var (where, query) in queries)
        {
            var names = MetricName().Matches(query).Select(m => m.Value).ToList();
            Assert.True(names.Count > 0, $"{where}: \"{query}\" reads no BatchRunner metric");
            Assert.All(names, name => Assert.True(exported.Contains(name), $"{where}: {name} is not a metric the controller exports"));
        }
    }

    [Fact]
    public void Every_metric_the_controller_exports_is_on_the_dashboard()
    {
        var read = Queries().SelectMany(q => MetricName().Matches(q.Query).Select(m => Regex.Replace(m.Value, "_(bucket|sum|count)$", ""))).ToHashSet(StringComparer.Ordinal);
        var metrics = ExportedSeries().Where(s => !Regex.IsMatch(s, "_(bucket|sum|count)$")).ToList();

        Assert.All(metrics, metric => Assert.True(read.Contains(metric), $"{metric} is on no panel"));
    }

    [Fact]
    public void Every_panel_query_is_filtered_by_the_dashboards_job_and_data_source()
    {
        foreach (var (where, query) in Queries().Where(q => q.Where.StartsWith("panel", StringComparison.Ordinal)))
        {
            Assert.False(MetricWithoutJobFilter().IsMatch(query), $"{where}: \"{query}\" reads a metric without {{job=~\"$job\"}}");
        }

        foreach (var panel in Dashboard()["panels"]!.AsArray().Where(p => Helm.Str(p!["type"]) != "row"))
        {
            Assert.Equal("${datasource}", Helm.Str(panel!["datasource"]?["uid"]));
            Assert.NotEmpty(panel["targets"]!.AsArray());
        }
    }

    [Fact]
    public void Panels_have_unique_ids_and_fit_the_grid_without_overlapping()
    {
        var panels = Dashboard()["panels"]!.AsArray().Select(p => p!.AsObject()).ToList();
        var cells = new HashSet<(int X, int Y)>();

        Assert.Equal(panels.Count, panels.Select(p => (int)p["id"]!).Distinct().Count());
        foreach (var panel in panels)
        {
            var grid = panel["gridPos"]!;
            var (x, y, w, h) = ((int)grid["x"]!, (int)grid["y"]!, (int)grid["w"]!, (int)grid["h"]!);
            Assert.True(x >= 0 && w > 0 && x + w <= 24, $"panel {panel["id"]} is outside the 24 columns");
            for (var column = x; column < x + w; column++)
            {
                for (var row = y; row < y + h; row++)
                {
                    Assert.True(cells.Add((column, row)), $"panel {panel["id"]} ({Helm.Str(panel["title"])}) overlaps another at {column},{row}");
                }
            }
        }
    }

    [Fact]
    public void No_dashboard_config_map_is_rendered_by_default()
    {
        var objects = Helm.Render().Objects();

        Assert.DoesNotContain(objects, o => Helm.Str(o["kind"]) == "ConfigMap" && Helm.Str(o["metadata"]!["name"])!.EndsWith("-dashboard", StringComparison.Ordinal));
    }

    [Fact]
    public void The_dashboard_config_map_carries_the_sidecars_label_the_folder_and_the_file_as_it_is()
    {
        var objects = Helm.Render("--set", "metrics.grafanaDashboard.enabled=true,metrics.grafanaDashboard.folder=Batch <jobs>").Objects();
        var map = Helm.Single(objects, "ConfigMap", "batchrunner-controller-dashboard");

        Assert.Equal("1", Helm.Str(map["metadata"]!["labels"]!["grafana_dashboard"]));
        Assert.Equal("Batch <jobs>", Helm.Str(map["metadata"]!["annotations"]!["grafana_folder"]));
        Assert.Equal(File.ReadAllText(DashboardPath).TrimEnd('\n'), Helm.Str(map["data"]!["batchrunner.json"]));
        var notes = Helm.Render("--notes", "--set", "metrics.grafanaDashboard.enabled=true").Output;
        Assert.Contains("batchrunner-controller-dashboard, labelled grafana_dashboard=1", notes, StringComparison.Ordinal);
    }
}
