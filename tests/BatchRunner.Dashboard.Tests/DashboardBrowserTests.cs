using BatchRunner.Aws.S3;
using BatchRunner.Browser.Testing;
using BatchRunner.Controller.Dashboard;
using BatchRunner.Core.Costs;
using BatchRunner.Core.Store;
using BatchRunner.Reports.Tests.Support;
using Microsoft.Extensions.Options;
using Microsoft.Playwright;
using static BatchRunner.Dashboard.Tests.DashboardServerTests;

namespace BatchRunner.Dashboard.Tests;

/// <summary>The dashboard in Debian's chromium, served by a real Kestrel over a source the test states and changes.</summary>
public sealed class DashboardBrowserTests(HeadlessBrowser browser) : IClassFixture<HeadlessBrowser>
{
    /// <summary>A page with every request it made and every script error or dialog it raised.</summary>
    private async Task<(IPage Page, List<string> Requests, List<string> Errors)> OpenAsync(string url)
    {
        var page = await browser.NewPageAsync();
        var (requests, errors) = (new List<string>(), new List<string>());
        page.Request += (_, request) => requests.Add(request.Url);
        page.PageError += (_, error) => errors.Add(error);
        page.Dialog += async (_, dialog) =>
        {
            // A dialog left open would hold the page (and the test) until it is answered.
            errors.Add("dialog: " + dialog.Message);
            await dialog.DismissAsync();
        };
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                errors.Add($"{message.Text} ({message.Location})");
            }
        };
        await page.GotoAsync(url);
        return (page, requests, errors);
    }

    [Fact]
    public async Task Hostile_names_show_as_text_run_nothing_and_link_to_their_page()
    {
        var source = new StatedSource().With(
            [Job(HostileNamespace, HostileName, queue: "research") with { Phase = "Pending", WaitReason = "<img src=x onerror=alert(1)>", WaitMessage = "<script>alert(2)</script>" }],
            [new QueueView { Name = "research", Backends = "kubernetes", Waiting = 1, Tenants = [new TenantView("<b>team</b>", 1, 1, 0, 0, 10)] }]);
        await using var server = await DashboardServer.StartAsync(source, refreshSeconds: 1);

        var (page, requests, errors) = await OpenAsync(server.Url + "/ui/");
        await page.ScreenshotAsync(new() { Path = Path.Combine(HeadlessBrowser.Artifacts, "dashboard-hostile-overview.png"), FullPage = true });
        Assert.Equal($"{HostileNamespace}/{HostileName}", await page.Locator("#waiting tbody tr td:nth-child(3) a").TextContentAsync());
        Assert.Equal("<script>alert(2)</script>", await page.Locator("#waiting td.message").TextContentAsync());
        Assert.Equal("<b>team</b>", await page.Locator("#tenants tbody td:nth-child(2)").TextContentAsync());
        Assert.Equal(0, await page.Locator("main img, main script, main i, main td b").CountAsync());
        Assert.Null(await page.EvaluateAsync<int?>("() => window.__pwned ?? null"));

        await page.Locator("#waiting tbody a").First.ClickAsync(new() { Position = new Position { X = 2, Y = 2 } });
        await page.WaitForURLAsync("**/ui/queues/**");
        await page.GoBackAsync();
        await page.Locator("#waiting tbody tr td:nth-child(3) a").ClickAsync();
        await Assertions.Expect(page.Locator("#phase")).ToHaveTextAsync("Pending");
        Assert.Equal(HostileName, (await page.Locator("h1").TextContentAsync())!.Replace(HostileNamespace + "/", "", StringComparison.Ordinal).Replace(" Pending", "", StringComparison.Ordinal));
        await page.ScreenshotAsync(new() { Path = Path.Combine(HeadlessBrowser.Artifacts, "dashboard-hostile-batchjob.png"), FullPage = true });

        Assert.Empty(errors);
        Assert.All(requests, r => Assert.StartsWith(server.Url + "/ui/", r, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_batchjob_page_follows_its_progress_without_being_reloaded()
    {
        var source = new StatedSource().With([Job("default", "sweep", total: 10, succeeded: 3)]);
        await using var server = await DashboardServer.StartAsync(source, refreshSeconds: 1);
        var (page, _, errors) = await OpenAsync(server.Url + "/ui/namespaces/default/batchjobs/sweep");
        Assert.Equal("3/10", await page.Locator("p.progress .count").TextContentAsync());
        await page.EvaluateAsync("() => { window.__sameDocument = true; }");

        source.With([Job("default", "sweep", total: 10, succeeded: 9) with { Failed = 1, FailedIndexes = "7", Phase = "Failed" }]);

        await Assertions.Expect(page.Locator("p.progress .count")).ToHaveTextAsync("10/10", new() { Timeout = 15_000 });
        await Assertions.Expect(page.Locator("#phase")).ToHaveTextAsync("Failed");
        await Assertions.Expect(page.Locator("#failed-indexes")).ToHaveTextAsync("7");
        Assert.True(await page.EvaluateAsync<bool>("() => window.__sameDocument === true"), "the page was updated in place, not reloaded");

        Assert.Empty(errors);

        // The BatchJob is deleted while its page is open: the page says so rather than showing what is gone (its
        // live part now answers 404, which the browser's console reports).
        source.With([]);
        await Assertions.Expect(page.Locator("#not-found")).ToContainTextAsync("There is no BatchJob default/sweep.", new() { Timeout = 15_000 });
        await page.ScreenshotAsync(new() { Path = Path.Combine(HeadlessBrowser.Artifacts, "dashboard-deleted.png"), FullPage = true });
        Assert.All(errors, e => Assert.Contains("404", e, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_finished_runs_page_draws_its_report_and_links_each_failed_index_to_its_log()
    {
        using var store = new SweepStore(batchJob: "sweep", run: "r1");
        for (var index = 0; index < 12; index++)
        {
            var fails = index % 5 == 4;
            store.Attempt(index, new { rate = 0.1 * (index % 4), servers = 1 + (index % 3) }, status: fails ? "failed" : "succeeded", exitCode: fails ? 2 : 0,
                reason: fails ? "exit code 2" : null, startSeconds: index, rows: fails ? null : [new { wait = index * 0.5, served = index }]);
        }

        var logs = Path.Combine(store.Root, StoreLayout.AttemptPrefix("sweep", "r1", 4, 1), StoreLayout.LogsFolder);
        Directory.CreateDirectory(logs);
        File.WriteAllText(Path.Combine(logs, "stdout.txt"), "simulating\n<script>alert('log')</script>\ndiverged at step 12\n");
        using var runs = new StoreDashboardRuns(Options.Create(new ResultsOptions { Uri = store.Root }), PriceTable.Defaults, TimeProvider.System);
        var source = new StatedSource().With([Job("default", "sweep", phase: "Failed", total: 12, succeeded: 10) with { Failed = 2, FailedIndexes = "4,9" }]);
        await using var server = await DashboardServer.StartAsync(source, runs, refreshSeconds: 1);

        var (page, requests, errors) = await OpenAsync(server.Url + "/ui/namespaces/default/batchjobs/sweep");
        var report = page.FrameLocator("#report");
        await Assertions.Expect(report.Locator("html[data-ready=true]")).ToHaveCountAsync(1, new() { Timeout = 30_000 });
        var figures = int.Parse((await report.Locator("html").GetAttributeAsync("data-figures"))!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(figures >= 4, $"{figures} figures");
        Assert.Equal(figures, await report.Locator(".figure canvas").CountAsync());
        Assert.Equal(["4", "9"], await page.Locator("#failures tbody tr td:first-child").AllTextContentsAsync());
        await page.ScreenshotAsync(new() { Path = Path.Combine(HeadlessBrowser.Artifacts, "dashboard-report.png"), FullPage = true });

        // The log is served as plain text in a CSP sandbox, where Playwright cannot evaluate: its answer is read instead.
        var log = await page.RunAndWaitForResponseAsync(() => page.Locator("#failures tr[data-index='4'] a.log").ClickAsync(), r => r.Url.EndsWith("/log", StringComparison.Ordinal));
        Assert.Equal(200, log.Status);
        Assert.Equal("text/plain; charset=utf-8", log.Headers["content-type"]);
        Assert.Contains("<script>alert('log')</script>\ndiverged at step 12", await log.TextAsync(), StringComparison.Ordinal);

        Assert.Empty(errors);
        Assert.All(requests, r => Assert.StartsWith(server.Url + "/ui/", r, StringComparison.Ordinal));
    }
}
