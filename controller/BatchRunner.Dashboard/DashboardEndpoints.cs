using System.ComponentModel.DataAnnotations;
using System.Globalization;
using BatchRunner.Reports;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchRunner.Dashboard;

/// <summary><c>BatchRunner:Dashboard</c>: the read-only web dashboard under <see cref="DashboardEndpoints.Prefix"/>.</summary>
public sealed class DashboardOptions
{
    public const string Section = "BatchRunner:Dashboard";

    public bool Enabled { get; init; } = true;

    /// <summary>How often an open page fetches its live part again.</summary>
    [Range(1, 300)]
    public int RefreshSeconds { get; init; } = 2;

    /// <summary>BatchJobs on one page of the list.</summary>
    [Range(10, 1000)]
    public int PageSize { get; init; } = 50;

    /// <summary>
    /// How long a BatchJob's page waits for its run's report before it is shown without (the report goes on being
    /// built, and the next visit has it): a large run in S3 is copied before it is read.
    /// </summary>
    [Range(0, 120)]
    public int ReportWaitSeconds { get; init; } = 5;
}

public static class DashboardEndpoints
{
    /// <summary>Where the dashboard is, on the port of the health and metrics endpoints.</summary>
    public const string Prefix = "/ui";

    /// <summary>The most of a log a page shows: its end.</summary>
    public const int LogTailBytes = 256 * 1024;

    public static IServiceCollection AddBatchRunnerDashboard(this IServiceCollection services)
    {
        services.AddOptions<DashboardOptions>().BindConfiguration(DashboardOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<DashboardHandlers>();
        return services;
    }

    /// <summary>The pages (GET only: nothing here changes anything) and their assets; anything else under the prefix is a 404 page.</summary>
    public static IEndpointRouteBuilder MapBatchRunnerDashboard(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup(Prefix);
        group.MapGet("/", context => Handlers(context).OverviewAsync(context));
        group.MapGet("/batchjobs", context => Handlers(context).ListAsync(context));
        group.MapGet("/namespaces/{ns}/batchjobs/{name}", context => Handlers(context).BatchJobAsync(context));
        group.MapGet("/namespaces/{ns}/batchjobs/{name}/report", context => Handlers(context).ReportAsync(context));
        group.MapGet("/namespaces/{ns}/batchjobs/{name}/indexes/{index}/attempts/{attempt}/log", context => Handlers(context).LogAsync(context));
        group.MapGet("/queues/{name}", context => Handlers(context).QueueAsync(context));
        group.MapGet("/assets/{file}", context => Handlers(context).AssetAsync(context));
        group.MapGet("/{**rest}", context => Handlers(context).NotFoundAsync(context, "There is no such page."));
        return endpoints;
    }

    private static DashboardHandlers Handlers(HttpContext context) => context.RequestServices.GetRequiredService<DashboardHandlers>();
}

/// <summary>The dashboard's request handlers: each reads the source's current snapshot and renders one page.</summary>
internal sealed class DashboardHandlers(
    IDashboardSource source, IDashboardRuns runs, IOptions<DashboardOptions> options, TimeProvider time, ILogger<DashboardHandlers> log)
{
    private static readonly DashboardLinks Links = new(DashboardEndpoints.Prefix);

    private static readonly Dictionary<string, string> Assets = new(StringComparer.Ordinal)
    {
        ["dashboard.js"] = "text/javascript; charset=utf-8",
        ["dashboard.css"] = "text/css; charset=utf-8",
    };

    private PageContext Context() => new(Links, options.Value.RefreshSeconds, time.GetUtcNow(), source.HasSynced);

    public Task OverviewAsync(HttpContext http)
    {
        var context = Context();
        return PageAsync(http, StatusCodes.Status200OK, context, "Overview", DashboardPages.Overview(source.Current, context));
    }

    public Task ListAsync(HttpContext http)
    {
        var query = http.Request.Query;
        var pageText = query["page"].ToString();
        var page = 1;
        if (pageText.Length > 0 && (!int.TryParse(pageText, NumberStyles.None, CultureInfo.InvariantCulture, out page) || page < 1))
        {
            return BadRequestAsync(http, $"page: {pageText} is not a page number (1, 2, …)");
        }

        var phase = query["phase"].ToString();
        if (phase.Length > 0 && !BatchJobFilter.Phases.Contains(phase))
        {
            return BadRequestAsync(http, $"phase: {phase} is not one of {string.Join(", ", BatchJobFilter.Phases)}");
        }

        var filter = new BatchJobFilter(Empty(query["namespace"]), Empty(phase), Empty(query["queue"]), Empty(query["q"]), page);
        var context = Context();
        var listed = BatchJobList.Page(source.Current, filter, options.Value.PageSize);
        return PageAsync(http, StatusCodes.Status200OK, context, "BatchJobs", DashboardPages.List(listed, filter, context), before: DashboardPages.ListForm(filter, context));
    }

    public async Task BatchJobAsync(HttpContext http)
    {
        var context = Context();
        if (Find(http) is not { } batchJob)
        {
            await NotFoundAsync(http, NoBatchJob(http)).ConfigureAwait(false);
            return;
        }

        var live = DashboardPages.BatchJob(batchJob, context);
        if (IsLive(http))
        {
            await PageAsync(http, StatusCodes.Status200OK, context, batchJob.Name, live).ConfigureAwait(false);
            return;
        }

        HtmlWriter results;
        try
        {
            var report = await ReportOf(batchJob, http.RequestAborted)
                .WaitAsync(TimeSpan.FromSeconds(options.Value.ReportWaitSeconds), time, http.RequestAborted).ConfigureAwait(false);
            results = DashboardPages.Results(batchJob, report, runs.Store, context);
        }
        catch (TimeoutException)
        {
            results = new HtmlWriter().Add($"""<section id="results"><h2>Results</h2><p class="note" id="report-building">The report of run {batchJob.RunId} is being built from {runs.Store}: it is here when you reload in a moment.</p></section>""");
        }
        catch (Exception e) when (e is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
        {
            log.LogWarning("The dashboard could not build the report of {Namespace}/{Name}: {Error}", batchJob.Namespace, batchJob.Name, e.Message);
            results = new HtmlWriter().Add($"""<section id="results"><h2>Results</h2><p class="note">The report could not be built: {e.Message}</p></section>""");
        }

        await PageAsync(http, StatusCodes.Status200OK, context, $"{batchJob.Namespace}/{batchJob.Name}", live, after: results).ConfigureAwait(false);
    }

    public async Task ReportAsync(HttpContext http)
    {
        if (Find(http) is not { } batchJob)
        {
            await NotFoundAsync(http, NoBatchJob(http)).ConfigureAwait(false);
            return;
        }

        SweepReport? report;
        try
        {
            report = await ReportOf(batchJob, http.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
        {
            log.LogWarning("The dashboard could not build the report of {Namespace}/{Name}: {Error}", batchJob.Namespace, batchJob.Name, e.Message);
            await PageAsync(http, StatusCodes.Status503ServiceUnavailable, Context(), "Report", new HtmlWriter().Add($"""<h1>No report</h1><p>The report could not be built: {e.Message}</p>""")).ConfigureAwait(false);
            return;
        }

        if (report is null)
        {
            await NotFoundAsync(http, runs.Store is null
                ? "No results store is configured (BatchRunner:Results:Uri): there is no report."
                : $"{runs.Store} holds no attempt of {batchJob.Namespace}/{batchJob.Name} run {batchJob.RunId} yet.").ConfigureAwait(false);
            return;
        }

        Secure(http.Response, ReportPage.ContentSecurityPolicy + "; frame-ancestors 'self'; sandbox allow-scripts allow-downloads allow-popups allow-popups-to-escape-sandbox");
        http.Response.ContentType = "text/html; charset=utf-8";
        await ReportPage.WriteAsync(report, http.Response.Body, http.RequestAborted).ConfigureAwait(false);
    }

    public async Task LogAsync(HttpContext http)
    {
        if (Find(http) is not { } batchJob)
        {
            await NotFoundAsync(http, NoBatchJob(http)).ConfigureAwait(false);
            return;
        }

        var values = http.Request.RouteValues;
        if (!int.TryParse(values["index"] as string, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            || !int.TryParse(values["attempt"] as string, NumberStyles.None, CultureInfo.InvariantCulture, out var attempt) || attempt < 1)
        {
            await BadRequestAsync(http, "an index is a whole number from 0 and an attempt one from 1").ConfigureAwait(false);
            return;
        }

        LogTail? tail;
        try
        {
            tail = await runs.LogAsync(batchJob, index, attempt, http.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
        {
            log.LogWarning("The dashboard could not read a log of {Namespace}/{Name}: {Error}", batchJob.Namespace, batchJob.Name, e.Message);
            await PageAsync(http, StatusCodes.Status503ServiceUnavailable, Context(), "Log", new HtmlWriter().Add($"""<h1>No log</h1><p>The log could not be read: {e.Message}</p>""")).ConfigureAwait(false);
            return;
        }

        if (tail is null)
        {
            await NotFoundAsync(http, $"No log of index {index}, attempt {attempt} of {batchJob.Namespace}/{batchJob.Name} run {batchJob.RunId} in the store.").ConfigureAwait(false);
            return;
        }

        // Plain text in a sandbox: whatever a workload printed is shown as it is, never run or rendered.
        Secure(http.Response, "default-src 'none'; sandbox");
        http.Response.ContentType = "text/plain; charset=utf-8";
        var heading = tail.Truncated
            ? $"# {batchJob.Namespace}/{batchJob.Name} run {batchJob.RunId}, index {index}, attempt {attempt}: the last {DashboardEndpoints.LogTailBytes / 1024} KiB of {tail.Bytes:N0} bytes\n"
            : $"# {batchJob.Namespace}/{batchJob.Name} run {batchJob.RunId}, index {index}, attempt {attempt}\n";
        await http.Response.WriteAsync(heading + tail.Text, http.RequestAborted).ConfigureAwait(false);
    }

    public Task QueueAsync(HttpContext http)
    {
        var name = Segment(http, "name");
        var snapshot = source.Current;
        var queue = snapshot.FindQueue(name);
        var members = snapshot.InQueue(name);
        if (queue is null && members.Count == 0)
        {
            return NotFoundAsync(http, source.HasSynced ? $"There is no queue {name}." : "The queues are still loading: try again in a moment.");
        }

        var context = Context();
        return PageAsync(http, StatusCodes.Status200OK, context, "Queue " + name, DashboardPages.Queue(name, queue, members, context));
    }

    public async Task AssetAsync(HttpContext http)
    {
        var file = http.Request.RouteValues["file"] as string ?? "";
        if (!Assets.TryGetValue(file, out var contentType))
        {
            await NotFoundAsync(http, "There is no such file.").ConfigureAwait(false);
            return;
        }

        Secure(http.Response, DashboardPages.ContentSecurityPolicy);
        http.Response.ContentType = contentType;
        http.Response.Headers.CacheControl = "no-cache";
        await using var asset = typeof(DashboardHandlers).Assembly.GetManifestResourceStream(file)!;
        await asset.CopyToAsync(http.Response.Body, http.RequestAborted).ConfigureAwait(false);
    }

    public Task NotFoundAsync(HttpContext http, string what)
    {
        var context = Context();
        return PageAsync(http, StatusCodes.Status404NotFound, context, "Not found", DashboardPages.NotFound(what, context));
    }

    private Task BadRequestAsync(HttpContext http, string what) =>
        PageAsync(http, StatusCodes.Status400BadRequest, Context(), "Bad request", DashboardPages.BadRequest(what));

    /// <summary>The run's report, its failed indexes linking to their logs here.</summary>
    private Task<SweepReport?> ReportOf(BatchJobView batchJob, CancellationToken cancellation) =>
        runs.ReportAsync(batchJob, (index, attempt) => Links.Log(batchJob.Namespace, batchJob.Name, index, attempt), cancellation);

    private BatchJobView? Find(HttpContext http) => source.Current.Find(Segment(http, "ns"), Segment(http, "name"));

    /// <summary>
    /// A path segment as it was named: the server decodes every escape in a path but <c>%2F</c> (so that it cannot
    /// split the path), which is left to here. Kubernetes names hold neither <c>/</c> nor <c>%</c>, so nothing is ambiguous.
    /// </summary>
    private static string Segment(HttpContext http, string name) =>
        (http.Request.RouteValues[name] as string ?? "").Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);

    private string NoBatchJob(HttpContext http)
    {
        var key = $"{Segment(http, "ns")}/{Segment(http, "name")}";
        return source.HasSynced ? $"There is no BatchJob {key}." : $"The BatchJobs are still loading: {key} may be there in a moment.";
    }

    private static bool IsLive(HttpContext http) => http.Request.Query["live"] == "1";

    private static string? Empty(Microsoft.Extensions.Primitives.StringValues value) => value.ToString() is { Length: > 0 } text ? text.Trim() : null;

    /// <summary>A whole page, or with <c>?live=1</c> its live part alone.</summary>
    private static Task PageAsync(HttpContext http, int status, PageContext context, string title, HtmlWriter live, HtmlWriter? before = null, HtmlWriter? after = null)
    {
        http.Response.StatusCode = status;
        Secure(http.Response, DashboardPages.ContentSecurityPolicy);
        http.Response.ContentType = "text/html; charset=utf-8";
        return http.Response.WriteAsync(IsLive(http) ? live.ToString() : DashboardPages.Layout(context, title, live, before, after), http.RequestAborted);
    }

    private static void Secure(HttpResponse response, string policy)
    {
        var headers = response.Headers;
        headers.ContentSecurityPolicy = policy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-store";
    }
}
