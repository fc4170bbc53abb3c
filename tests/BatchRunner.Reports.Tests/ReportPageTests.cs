using System.Text;
using BatchRunner.Browser.Testing;
using BatchRunner.Reports.Tests.Support;
using Microsoft.Playwright;

namespace BatchRunner.Reports.Tests;

/// <summary>The report file opened in a real browser (Debian's chromium), offline, as the person who ran the sweep opens it.</summary>
public sealed class ReportPageTests(HeadlessBrowser browser) : IClassFixture<HeadlessBrowser>
{
    private const string HostileOutput = "<img src=x onerror=\"window.__pwned=1\">";
    private const string HostileReason = "</script><script>window.__pwned=2</script><b>bold</b>";

    /// <summary>A sweep over two parameters with repeats, failures at one value, retries and two backends.</summary>
    private static SweepStore Sweep()
    {
        var store = new SweepStore();
        var index = 0;
        foreach (var rate in new[] { 0.3, 0.5, 0.7, 0.9 })
        {
            foreach (var servers in new[] { 1, 2 })
            {
                for (var repeat = 0; repeat < 3; repeat++, index++)
                {
                    var fails = rate == 0.9 && servers == 1 && repeat > 0;
                    var rows = fails ? null : new object[] { new Dictionary<string, double> { ["wait"] = rate / servers + repeat * 0.01, [HostileOutput] = repeat } };
                    if (repeat == 2)
                    {
                        store.Attempt(index, new { rate, servers }, status: "failed", reason: "first try", startSeconds: index, seconds: 0.5);
                    }

                    store.Attempt(index, new { rate, servers }, attempt: repeat == 2 ? 2 : 1, status: fails ? "failed" : "succeeded", reason: fails ? HostileReason : null,
                        startSeconds: index + (repeat == 2 ? 1 : 0), seconds: 1 + repeat, backend: servers == 1 ? "local" : "kubernetes", rows: rows, seed: repeat);
                }
            }
        }

        return store;
    }

    private static async Task<(SweepReport Report, string File)> WriteAsync(SweepStore store, string name)
    {
        var report = store.Report()!;
        var file = Path.Combine(store.Root, name + ".html");
        await using (var stream = File.Create(file))
        {
            await ReportPage.WriteAsync(report, stream, CancellationToken.None);
        }

        return (report, file);
    }

    /// <summary>Opens the file and waits until the page says it has drawn (or could not); every request and error is kept.</summary>
    private async Task<(IPage Page, List<string> Requests, List<string> Errors)> OpenAsync(string file)
    {
        var page = await browser.NewPageAsync();
        var (requests, errors) = (new List<string>(), new List<string>());
        page.Request += (_, request) => requests.Add(request.Url);
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                errors.Add(message.Text);
            }
        };
        page.PageError += (_, error) => errors.Add(error);
        await page.GotoAsync(new Uri(file).AbsoluteUri);
        await page.WaitForSelectorAsync("html[data-ready]", new PageWaitForSelectorOptions { State = WaitForSelectorState.Attached, Timeout = 30_000 });
        return (page, requests, errors);
    }

    [Fact]
    public async Task TheReportOpensOfflineWithEveryFigureDrawnAndAsksForNothing()
    {
        using var store = Sweep();
        var (report, file) = await WriteAsync(store, "report");

        var (page, requests, errors) = await OpenAsync(file);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(HeadlessBrowser.Artifacts, "report.png"), FullPage = true });

        Assert.Equal("true", await page.GetAttributeAsync("html", "data-ready"));
        Assert.Empty(errors);
        Assert.Equal([new Uri(file).AbsoluteUri], requests);
        var expected = report.Effects.Count + report.Heatmaps.Count + report.FailureRates.Count + 3;
        Assert.Equal(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), await page.GetAttributeAsync("html", "data-figures"));
        Assert.Equal(expected, await page.Locator(".figure canvas").CountAsync());
        Assert.Equal(report.Summary.Failed.ToString(System.Globalization.CultureInfo.InvariantCulture), await page.Locator(".card[data-key=Failed] .value").TextContentAsync());
        Assert.Equal(report.Failed.Rows.Count, await page.Locator("#failed-indexes tbody tr").CountAsync());
        Assert.Contains("kubernetes", await page.Locator("section.cost table").TextContentAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NamesAndReasonsAWorkloadWroteAreShownAsTextNeverRunAsPage()
    {
        using var store = Sweep();
        var (_, file) = await WriteAsync(store, "hostile");

        var (page, _, errors) = await OpenAsync(file);

        Assert.Empty(errors);
        Assert.Equal("true", await page.GetAttributeAsync("html", "data-ready"));
        Assert.Null(await page.EvaluateAsync<int?>("() => window.__pwned ?? null"));
        Assert.Equal(0, await page.Locator("main img, main b, main script").CountAsync());
        var reasons = await page.Locator("#failed-indexes tbody tr td:nth-child(6)").AllTextContentsAsync();
        Assert.Contains(HostileReason, reasons);
    }

    [Fact]
    public async Task EachFigureExportsAsPngAndAsSvgForPapers()
    {
        using var store = Sweep();
        var (_, file) = await WriteAsync(store, "export");
        var (page, _, errors) = await OpenAsync(file);
        var figure = page.Locator(".figure").First;
        var id = await figure.GetAttributeAsync("id");

        var png = await page.RunAndWaitForDownloadAsync(() => figure.GetByRole(AriaRole.Button, new() { Name = "PNG" }).ClickAsync());
        var svg = await page.RunAndWaitForDownloadAsync(() => figure.GetByRole(AriaRole.Button, new() { Name = "SVG" }).ClickAsync());
        var (pngFile, svgFile) = (Path.Combine(HeadlessBrowser.Artifacts, png.SuggestedFilename), Path.Combine(HeadlessBrowser.Artifacts, svg.SuggestedFilename));
        await png.SaveAsAsync(pngFile);
        await svg.SaveAsAsync(svgFile);

        Assert.Empty(errors);
        Assert.Equal($"sweep-r1-{id}.png", png.SuggestedFilename);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(pngFile)[..4]);
        var text = File.ReadAllText(svgFile, Encoding.UTF8);
        Assert.StartsWith("<svg", text, StringComparison.Ordinal);
        Assert.Contains("wait by rate", text, StringComparison.Ordinal);
    }
}
