using System.IO.Compression;
using System.Net;
using System.Text.Json;

namespace BatchRunner.Reports;

/// <summary>
/// A <see cref="SweepReport"/> as one self-contained HTML file: the data as JSON, the page's script and style, and
/// Apache ECharts (gzip-compressed, unpacked by the page) all inline; its content security policy allows no request of
/// any kind, so it opens the same offline, from a mail attachment or a bucket.
/// </summary>
public static class ReportPage
{
    /// <summary>No fetch, no external script, style, font or image: the page can only use what it carries.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; base-uri 'none'; form-action 'none'";

    private static readonly Lazy<string> PackedEcharts = new(() =>
    {
        using var source = Asset("echarts.js");
        using var packed = new MemoryStream();
        using (var gzip = new GZipStream(packed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            source.CopyTo(gzip);
        }

        return Convert.ToBase64String(packed.GetBuffer(), 0, (int)packed.Length);
    });

    public static string Script => ReadAsset("report.js");

    public static string Style => ReadAsset("report.css");

    /// <summary>Apache ECharts as shipped (for the dashboard, which serves it as a file of its own).</summary>
    public static Stream Echarts() => Asset("echarts.js");

    public static async Task WriteAsync(SweepReport report, Stream destination, CancellationToken cancellation)
    {
        // The JSON's default encoder escapes <, > and & (as \u003C…), so no value can close the script element it sits in.
        var data = JsonSerializer.Serialize(report, ReportJsonContext.Default.SweepReport);
        var title = WebUtility.HtmlEncode($"{report.BatchJob} · run {report.Run} · BatchRunner report");
        await using var writer = new StreamWriter(destination, leaveOpen: true);
        await writer.WriteAsync($"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="{ContentSecurityPolicy}">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="BatchRunner">
            <title>{title}</title>
            <style>
            {Style}
            </style>
            </head>
            <body>
            <main id="report"><p>Drawing the report…</p></main>
            <script type="application/json" id="report-data">{data}</script>
            <!-- Apache ECharts 6.0.0 (Apache License 2.0, https://echarts.apache.org), gzip, base64. -->
            <script type="application/octet-stream" id="echarts-gz">{PackedEcharts.Value}</script>
            <script>
            {Script}
            </script>
            <script>BatchRunnerReport.load();</script>
            </body>
            </html>

            """.AsMemory(), cancellation).ConfigureAwait(false);
    }

    private static string ReadAsset(string name)
    {
        using var reader = new StreamReader(Asset(name));
        return reader.ReadToEnd();
    }

    private static Stream Asset(string name) =>
        typeof(ReportPage).Assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"the report's asset {name} is not in {typeof(ReportPage).Assembly.GetName().Name}");
}
