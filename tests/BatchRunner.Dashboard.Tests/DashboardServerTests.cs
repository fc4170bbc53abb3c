using System.Net;
using System.Text.RegularExpressions;
using BatchRunner.Aws.S3;
using BatchRunner.Controller.Dashboard;
using BatchRunner.Core.Costs;
using BatchRunner.Core.Store;
using BatchRunner.Reports;
using BatchRunner.Reports.Tests.Support;
using Microsoft.Extensions.Options;

namespace BatchRunner.Dashboard.Tests;

/// <summary>The dashboard's pages over HTTP from a real Kestrel: what they show, link, refuse and never let through.</summary>
public sealed partial class DashboardServerTests
{
    /// <summary>Kubernetes would refuse these names; a dashboard must still show and link them as they are.</summary>
    internal const string HostileName = "x<script>window.__pwned=1</script> \"q\"&'#?.. é";
    internal const string HostileNamespace = "team <b>a</b>";

    internal static BatchJobView Job(string ns, string name, string phase = "Running", int total = 10, int succeeded = 3, string? queue = null) => new()
    {
        Namespace = ns, Name = name, Phase = phase, Total = total, Succeeded = succeeded, Queue = queue, RunId = "r1",
        Created = new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero),
    };

    [Fact]
    public async Task A_name_html_or_urls_treat_specially_is_shown_as_text_and_links_to_its_own_page()
    {
        var source = new StatedSource().With(
            [Job(HostileNamespace, HostileName, queue: "q<i>1</i>") with { WaitReason = "<img src=x onerror=alert(1)>", Phase = "Pending", Eta = "soon" }],
            [new QueueView { Name = "q<i>1</i>", Backends = "kubernetes" }]);
        await using var server = await DashboardServer.StartAsync(source);

        foreach (var path in new[] { "/ui/", "/ui/batchjobs" })
        {
            var (status, body, _) = await server.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.DoesNotContain("<script>window", body, StringComparison.Ordinal);
            Assert.DoesNotContain("<b>a</b>", body, StringComparison.Ordinal);
            Assert.DoesNotContain("<img", body, StringComparison.Ordinal);
            Assert.DoesNotContain("<i>1</i>", body, StringComparison.Ordinal);
            Assert.Contains("x&lt;script&gt;", body, StringComparison.Ordinal);
        }

        var (_, list, _) = await server.GetAsync("/ui/batchjobs");
        var link = WebUtility.HtmlDecode(Assert.Single(BatchJobLinks().Matches(list)).Groups[1].Value);
        var (pageStatus, page, _) = await server.GetAsync(link);
        Assert.Equal(HttpStatusCode.OK, pageStatus);
        var heading = H1Name().Match(page);
        Assert.Equal((HostileNamespace + "/", HostileName), (WebUtility.HtmlDecode(heading.Groups[1].Value), WebUtility.HtmlDecode(heading.Groups[2].Value)));

        var queueLink = WebUtility.HtmlDecode(Assert.Single(QueueLinks().Matches(list).Select(m => m.Groups[1].Value).Distinct()));
        var (queueStatus, queuePage, _) = await server.GetAsync(queueLink);
        Assert.Equal(HttpStatusCode.OK, queueStatus);
        Assert.Contains("Queue q&lt;i&gt;1&lt;/i&gt;", queuePage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/ui/namespaces/default/batchjobs/nobody", "There is no BatchJob default/nobody.")]
    [InlineData("/ui/namespaces/default/batchjobs/nobody/report", "There is no BatchJob default/nobody.")]
    [InlineData("/ui/namespaces/default/batchjobs/nobody/indexes/0/attempts/1/log", "There is no BatchJob default/nobody.")]
    [InlineData("/ui/queues/nowhere", "There is no queue nowhere.")]
    [InlineData("/ui/no/such/page", "There is no such page.")]
    [InlineData("/ui/assets/secrets.json", "There is no such file.")]
    [InlineData("/ui/assets/..%2F..%2Fappsettings.json", "There is no such file.")]
    [InlineData("/ui/namespaces/default/batchjobs/sweep/report", "holds no attempt of default/sweep run r1 yet.")]
    [InlineData("/ui/namespaces/default/batchjobs/sweep/indexes/3/attempts/1/log", "No log of index 3, attempt 1 of default/sweep run r1")]
    public async Task What_does_not_exist_gets_a_404_page_that_says_what(string path, string says)
    {
        await using var server = await DashboardServer.StartAsync(new StatedSource().With([Job("default", "sweep")]), new StatedRuns());
        var (status, body, response) = await server.GetAsync(path);
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(WebUtility.HtmlEncode(says), body, StringComparison.Ordinal);
        Assert.Contains("<h1>Not found</h1>", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refresh_interval_out_of_range_stops_the_host_at_start_naming_the_setting()
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => DashboardServer.StartAsync(new StatedSource(), refreshSeconds: 0));
        Assert.Contains("RefreshSeconds", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_queue_batchjobs_name_without_a_queue_object_has_a_page_of_its_own()
    {
        await using var server = await DashboardServer.StartAsync(new StatedSource().With([Job("team-a", "sweep", queue: "default") with { Position = 1 }]));
        var (status, body, _) = await server.GetAsync("/ui/queues/default");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("No Queue object is named default", body, StringComparison.Ordinal);
        Assert.Contains("data-key=\"team-a/sweep\"", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/ui/batchjobs?page=abc", "page: abc is not a page number")]
    [InlineData("/ui/batchjobs?page=-1", "page: -1 is not a page number")]
    [InlineData("/ui/batchjobs?phase=Exploded", "phase: Exploded is not one of Pending, Waiting, Running, Succeeded, Failed, Cancelled")]
    [InlineData("/ui/namespaces/default/batchjobs/sweep/indexes/x/attempts/1/log", "an index is a whole number from 0 and an attempt one from 1")]
    [InlineData("/ui/namespaces/default/batchjobs/sweep/indexes/1/attempts/0/log", "an index is a whole number from 0 and an attempt one from 1")]
    public async Task A_malformed_request_gets_a_400_page_naming_what_is_wrong(string path, string says)
    {
        await using var server = await DashboardServer.StartAsync(new StatedSource().With([Job("default", "sweep")]));
        var (status, body, _) = await server.GetAsync(path);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(WebUtility.HtmlEncode(says), body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Thousands_of_batchjobs_are_listed_a_page_at_a_time_with_the_counts_of_them_all()
    {
        var many = Enumerable.Range(0, 5000).Select(i => Job($"ns-{i % 7}", $"sweep-{i:0000}", i % 5 == 0 ? "Succeeded" : "Running") with
        {
            Created = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero).AddSeconds(i),
        });
        await using var server = await DashboardServer.StartAsync(new StatedSource().With(many));

        var (_, first, _) = await server.GetAsync("/ui/batchjobs");
        Assert.Equal(50, Rows().Count(first));
        Assert.Contains("5000 BatchJob(s), page 1 of 100", first, StringComparison.Ordinal);
        Assert.Contains("data-key=\"ns-1/sweep-4999\"", first, StringComparison.Ordinal);
        Assert.Contains("data-phase=\"Succeeded\">Succeeded <b>1000</b>", first, StringComparison.Ordinal);

        var (_, last, _) = await server.GetAsync("/ui/batchjobs?page=100");
        Assert.Contains("data-key=\"ns-0/sweep-0000\"", last, StringComparison.Ordinal);
        Assert.DoesNotContain("rel=\"next\"", last, StringComparison.Ordinal);

        var (_, filtered, _) = await server.GetAsync("/ui/batchjobs?namespace=ns-3&phase=Succeeded&page=2");
        Assert.Contains("143 BatchJob(s), page 2 of 3", filtered, StringComparison.Ordinal);
        // The pager keeps the filter.
        Assert.Contains("href=\"/ui/batchjobs?namespace=ns-3&amp;phase=Succeeded&amp;page=3\"", filtered, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_live_part_comes_alone_and_every_page_forbids_scripts_and_requests_from_elsewhere()
    {
        await using var server = await DashboardServer.StartAsync(new StatedSource().With([Job("default", "sweep"), Job("default", "queued", phase: "Pending", queue: "research") with
        {
            Allowance = 1, Wanted = 4, Position = 2, WaitReason = "QuotaExhausted", WaitMessage = "3 indexes of 4 in use",
        }]));

        var (_, live, response) = await server.GetAsync("/ui/namespaces/default/batchjobs/sweep?live=1");
        Assert.DoesNotContain("<html", live, StringComparison.Ordinal);
        Assert.Contains("<span class=\"count\">3/10</span>", live, StringComparison.Ordinal);
        var policy = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", policy, StringComparison.Ordinal);
        Assert.Contains("script-src 'self'", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", policy, StringComparison.Ordinal);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());

        var (_, waiting, _) = await server.GetAsync("/ui/namespaces/default/batchjobs/queued?live=1");
        Assert.Contains("<td id=\"allowance\">1 of the 4 indexes it would run at once</td>", waiting, StringComparison.Ordinal);
        Assert.Contains("<td id=\"wait-reason\"><b>QuotaExhausted</b>: 3 indexes of 4 in use</td>", waiting, StringComparison.Ordinal);
        Assert.Contains("<td id=\"position\">2</td>", waiting, StringComparison.Ordinal);

        var (_, whole, _) = await server.GetAsync("/ui/namespaces/default/batchjobs/sweep");
        Assert.Contains("<main id=\"live\" data-refresh=\"2\">", whole, StringComparison.Ordinal);
        // Every script and style the page loads is the dashboard's own.
        Assert.All(Sources().Matches(whole), m => Assert.StartsWith("/ui/assets/", m.Groups[1].Value, StringComparison.Ordinal));
        var (scriptStatus, script, scriptResponse) = await server.GetAsync("/ui/assets/dashboard.js");
        Assert.Equal((HttpStatusCode.OK, "text/javascript"), (scriptStatus, scriptResponse.Content.Headers.ContentType?.MediaType));
        Assert.Contains("live=1", script.Replace("'live', '1'", "live=1", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Before_the_first_list_the_pages_say_they_are_loading_and_a_batchjob_may_come()
    {
        await using var server = await DashboardServer.StartAsync(new StatedSource(synced: false));
        var (status, overview, _) = await server.GetAsync("/ui/");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("Loading the BatchJobs and queues", overview, StringComparison.Ordinal);
        var (missing, body, _) = await server.GetAsync("/ui/namespaces/default/batchjobs/sweep");
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Contains("still loading", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_in_a_store_shows_its_failed_indexes_with_reasons_and_logs_and_its_report()
    {
        using var store = new SweepStore(batchJob: "sweep", run: "r1");
        for (var index = 0; index < 6; index++)
        {
            store.Attempt(index, new { rate = 0.1 * index, servers = 1 + (index % 2) }, status: index == 4 ? "failed" : "succeeded", exitCode: index == 4 ? 3 : 0,
                reason: index == 4 ? "exit code 3: <b>diverged</b>" : null, rows: index == 4 ? null : [new { wait = index * 1.5 }]);
        }

        var logs = Path.Combine(store.Root, StoreLayout.AttemptPrefix("sweep", "r1", 4, 1), StoreLayout.LogsFolder);
        Directory.CreateDirectory(logs);
        // A log larger than a page shows: only its end comes, and it says so.
        var log = string.Concat(Enumerable.Range(0, 40_000).Select(i => $"line {i} <script>x</script>\n"));
        File.WriteAllText(Path.Combine(logs, "stdout.txt"), log);
        using var runs = new StoreDashboardRuns(Options.Create(new ResultsOptions { Uri = store.Root }), PriceTable.Defaults, TimeProvider.System);
        var source = new StatedSource().With([Job("default", "sweep", phase: "Failed", total: 6, succeeded: 5) with { Failed = 1, FailedIndexes = "4" }]);
        await using var server = await DashboardServer.StartAsync(source, runs);

        var (status, page, _) = await server.GetAsync("/ui/namespaces/default/batchjobs/sweep");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("6 indexes, 5 succeeded, 1 failed", page, StringComparison.Ordinal);
        Assert.Contains("<tr data-index=\"4\">", page, StringComparison.Ordinal);
        Assert.Contains("exit code 3: &lt;b&gt;diverged&lt;/b&gt;", page, StringComparison.Ordinal);
        Assert.Contains("<a class=\"log\" href=\"/ui/namespaces/default/batchjobs/sweep/indexes/4/attempts/1/log\">", page, StringComparison.Ordinal);
        Assert.Contains("<iframe id=\"report\"", page, StringComparison.Ordinal);

        var (logStatus, text, logResponse) = await server.GetAsync("/ui/namespaces/default/batchjobs/sweep/indexes/4/attempts/1/log");
        Assert.Equal((HttpStatusCode.OK, "text/plain"), (logStatus, logResponse.Content.Headers.ContentType?.MediaType));
        Assert.Contains("sandbox", logResponse.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.StartsWith($"# default/sweep run r1, index 4, attempt 1: the last 256 KiB of {log.Length:N0} bytes\n", text, StringComparison.Ordinal);
        Assert.EndsWith("line 39999 <script>x</script>\n", text, StringComparison.Ordinal);
        Assert.True(text.Length < 300 * 1024, $"{text.Length} characters");

        var (reportStatus, report, reportResponse) = await server.GetAsync("/ui/namespaces/default/batchjobs/sweep/report");
        Assert.Equal(HttpStatusCode.OK, reportStatus);
        Assert.Contains("id=\"report-data\"", report, StringComparison.Ordinal);
        Assert.Contains("sandbox allow-scripts", reportResponse.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_report_still_being_built_does_not_hold_the_page_and_is_there_on_the_next_visit()
    {
        var runs = new StatedRuns { Building = new TaskCompletionSource<SweepReport?>() };
        await using var server = await DashboardServer.StartAsync(new StatedSource().With([Job("default", "sweep")]), runs, reportWaitSeconds: 0);

        var (status, page, _) = await server.GetAsync("/ui/namespaces/default/batchjobs/sweep");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("The report of run r1 is being built from s3://results/test", page, StringComparison.Ordinal);
        Assert.Contains("<span class=\"count\">3/10</span>", page, StringComparison.Ordinal);

        runs.Building.SetResult(null);
        var (_, again, _) = await server.GetAsync("/ui/namespaces/default/batchjobs/sweep");
        Assert.Contains("s3://results/test holds no attempt of run r1 yet.", again, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_report_build_goes_on_when_its_first_visitor_leaves_and_the_next_one_gets_it()
    {
        using var store = new SweepStore(batchJob: "sweep", run: "r1");
        store.Attempt(0, new { rate = 0.5 }, rows: [new { wait = 1.5 }]);
        store.Attempt(1, new { rate = 0.7 }, rows: [new { wait = 2.5 }]);
        using var runs = new StoreDashboardRuns(Options.Create(new ResultsOptions { Uri = store.Root }), PriceTable.Defaults, TimeProvider.System);
        var sweep = Job("default", "sweep", phase: "Succeeded", total: 2, succeeded: 2);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => runs.ReportAsync(sweep, (_, _) => "", new CancellationToken(canceled: true)));
        var report = await runs.ReportAsync(sweep, (_, _) => "", CancellationToken.None);

        Assert.Equal((2, 2), (report!.Summary.Indexes, report.Summary.Succeeded));
        // A finished run's report is kept: the same object comes back without another build.
        Assert.Same(report, await runs.ReportAsync(sweep, (_, _) => "", CancellationToken.None));
    }

    [GeneratedRegex("<td><a href=\"(/ui/namespaces/[^\"]+)\">")]
    private static partial Regex BatchJobLinks();

    [GeneratedRegex("<a href=\"(/ui/queues/[^\"]+)\">")]
    private static partial Regex QueueLinks();

    [GeneratedRegex("<h1><span class=\"ns\">([^<]*)</span>([^<]*) <span")]
    private static partial Regex H1Name();

    [GeneratedRegex("<tr data-key=")]
    private static partial Regex Rows();

    [GeneratedRegex("(?:src|href)=\"(/ui/assets/[^\"]*|[^\"]*\\.(?:js|css))\"")]
    private static partial Regex Sources();
}
