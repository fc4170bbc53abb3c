using System.Globalization;
using BatchRunner.Reports;

namespace BatchRunner.Dashboard;

/// <summary>What every page is rendered with: where the dashboard lives, how often it refreshes, and the time now.</summary>
public sealed record PageContext(DashboardLinks Links, int RefreshSeconds, DateTimeOffset Now, bool Synced);

/// <summary>
/// The dashboard's pages, rendered on the server as functions of a snapshot. Each page has a live part (the
/// <c>main</c> element) that the page's script fetches again every few seconds (<c>?live=1</c> returns it alone) and
/// swaps in when it changed; what is expensive to build (a run's report) sits outside it and is built once per visit.
/// </summary>
public static class DashboardPages
{
    /// <summary>No script, style or frame but the dashboard's own; no request anywhere else.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

    private const int OverviewRows = 20;

    public static string Layout(PageContext context, string title, HtmlWriter live, HtmlWriter? before = null, HtmlWriter? after = null)
    {
        var links = context.Links;
        return new HtmlWriter().Add($"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{title} · BatchRunner</title>
            <link rel="icon" href="data:,">
            <link rel="stylesheet" href="{links.Asset("dashboard.css")}">
            <script src="{links.Asset("dashboard.js")}" defer></script>
            </head>
            <body>
            <header class="top"><a class="brand" href="{links.Overview}">BatchRunner</a>
            <nav><a href="{links.Overview}">Overview</a><a href="{links.BatchJobs(new BatchJobFilter())}">BatchJobs</a></nav>
            <span id="updated" role="status"></span></header>
            {before ?? new HtmlWriter()}
            <main id="live" data-refresh="{context.RefreshSeconds}">
            {live}
            </main>
            {after ?? new HtmlWriter()}
            </body>
            </html>

            """).ToString();
    }

    public static HtmlWriter Overview(DashboardSnapshot snapshot, PageContext context)
    {
        var html = new HtmlWriter();
        if (!context.Synced)
        {
            return html.Add($"""<p class="note" id="loading">Loading the BatchJobs and queues…</p>""");
        }

        var links = context.Links;
        var counts = BatchJobList.Page(snapshot, new BatchJobFilter(), 1).Counts;
        html.Add($"""<section><h1>BatchJobs</h1><ul class="counts" id="phase-counts">""");
        foreach (var phase in BatchJobFilter.Phases)
        {
            html.Add($"""<li><a href="{links.BatchJobs(new BatchJobFilter(Phase: phase))}" class="phase {phase}" data-phase="{phase}"><b>{counts[phase]}</b> {phase}</a></li>""");
        }

        html.Add($"""<li><a href="{links.BatchJobs(new BatchJobFilter())}" data-phase="All"><b>{snapshot.BatchJobs.Count}</b> in all</a></li></ul></section>""");

        html.Add($"""<section><h2>Queues</h2>""");
        if (snapshot.Queues.Count == 0)
        {
            html.Add($"""<p class="note">No queues: every BatchJob runs in the default queue at its parallelism.</p>""");
        }
        else
        {
            html.Add($"""<table id="queues"><thead><tr><th>Queue</th><th>Backends</th><th class="n">Pending</th><th class="n">Admitted</th><th class="n">Waiting</th><th>Usage</th><th>State</th></tr></thead><tbody>""");
            foreach (var queue in snapshot.Queues)
            {
                html.Add($"""
                    <tr data-queue="{queue.Name}"><td><a href="{links.Queue(queue.Name)}">{queue.Name}</a></td><td>{queue.Backends}</td><td class="n">{queue.Pending}</td><td class="n">{queue.Admitted}</td><td class="n">{queue.Waiting}</td><td>{queue.Usage}</td><td>{QueueState(queue)}</td></tr>
                    """);
            }

            html.Add($"""</tbody></table>""");
            var tenants = snapshot.Queues.SelectMany(q => q.Tenants.Select(t => (Queue: q.Name, Tenant: t))).ToList();
            if (tenants.Count > 0)
            {
                html.Add($"""<h3>Usage by tenant</h3>""").Add($"{Tenants(tenants, links)}");
            }
        }

        html.Add($"""</section>""");

        var waiting = snapshot.BatchJobs.Where(b => b.IsWaiting).OrderBy(b => b.Queue, StringComparer.Ordinal).ThenBy(b => b.Position ?? int.MaxValue).ToList();
        html.Add($"""<section><h2>Waiting</h2>""");
        html.Add($"{(waiting.Count == 0 ? Note("Nothing waits for its queue.") : Waiting(waiting.Take(OverviewRows).ToList(), links))}");
        if (waiting.Count > OverviewRows)
        {
            html.Add($"""<p><a href="{links.BatchJobs(new BatchJobFilter(Phase: BatchJobFilter.Waiting))}">All {waiting.Count} waiting</a></p>""");
        }

        html.Add($"""</section>""");

        var running = snapshot.BatchJobs.Where(b => b.Phase == "Running").ToList();
        html.Add($"""<section><h2>Running</h2>""");
        html.Add($"{(running.Count == 0 ? Note("Nothing runs.") : Table(running.Take(OverviewRows).ToList(), context, "running"))}");
        if (running.Count > OverviewRows)
        {
            html.Add($"""<p><a href="{links.BatchJobs(new BatchJobFilter(Phase: "Running"))}">All {running.Count} running</a></p>""");
        }

        return html.Add($"""</section>""");
    }

    /// <summary>The list's filter form: outside the live part, so that typing in it is never interrupted.</summary>
    public static HtmlWriter ListForm(BatchJobFilter filter, PageContext context) => new HtmlWriter().Add($"""
        <form class="filter" method="get" action="{context.Links.BatchJobs(new BatchJobFilter())}">
        <label>Name <input name="q" value="{filter.Text}" placeholder="part of a name"></label>
        <label>Namespace <input name="namespace" value="{filter.Namespace}"></label>
        <label>Queue <input name="queue" value="{filter.Queue}"></label>
        <input type="hidden" name="phase" value="{filter.Phase}">
        <button type="submit">Filter</button>
        </form>
        """);

    public static HtmlWriter List(BatchJobPage page, BatchJobFilter filter, PageContext context)
    {
        var html = new HtmlWriter();
        if (!context.Synced)
        {
            return html.Add($"""<p class="note" id="loading">Loading the BatchJobs…</p>""");
        }

        var links = context.Links;
        html.Add($"""<ul class="tabs" id="phase-tabs"><li><a href="{links.BatchJobs(filter with { Phase = null, Page = 1 })}" class="{(filter.Phase is null ? "current" : "")}" data-phase="All">All</a></li>""");
        foreach (var phase in BatchJobFilter.Phases)
        {
            html.Add($"""<li><a href="{links.BatchJobs(filter with { Phase = phase, Page = 1 })}" class="{(filter.Phase == phase ? "current" : "")}" data-phase="{phase}">{phase} <b>{page.Counts[phase]}</b></a></li>""");
        }

        html.Add($"""</ul><p id="matching">{page.Matching} BatchJob(s){(page.Pages > 1 ? $", page {page.Page} of {page.Pages}" : "")}</p>""");
        if (page.Rows.Count > 0)
        {
            html.Add($"{Table(page.Rows, context, "batchjobs")}");
        }

        if (page.Pages > 1)
        {
            html.Add($"""<nav class="pager">""");
            if (page.Page > 1)
            {
                html.Add($"""<a rel="prev" href="{links.BatchJobs(filter with { Page = page.Page - 1 })}">← Newer</a>""");
            }

            if (page.Page < page.Pages)
            {
                html.Add($"""<a rel="next" href="{links.BatchJobs(filter with { Page = page.Page + 1 })}">Older →</a>""");
            }

            html.Add($"""</nav>""");
        }

        return html;
    }

    public static HtmlWriter BatchJob(BatchJobView b, PageContext context)
    {
        var links = context.Links;
        var html = new HtmlWriter().Add($"""
            <h1><span class="ns">{b.Namespace}/</span>{b.Name} <span class="phase {b.Phase}" id="phase">{b.Phase}</span></h1>
            <p class="progress">{Progress(b)}</p>
            <table class="facts" id="facts">
            <tr><th>Run</th><td>{b.RunId ?? "—"}</td></tr>
            <tr><th>Backend</th><td>{Backends(b)}</td></tr>
            <tr><th>Image</th><td><code>{b.Image}</code></td></tr>
            <tr><th>Queue</th><td>{QueueLink(b, links)}</td></tr>
            """);
        if (b.IsWaiting)
        {
            html.Add($"""<tr class="waiting"><th>Waiting because</th><td id="wait-reason"><b>{b.WaitReason}</b>: {b.WaitMessage}</td></tr>""");
        }

        if (b.Position is { } position && !b.IsFinished)
        {
            html.Add($"""<tr><th>Position</th><td id="position">{position}</td></tr>""");
        }

        if (b.Wanted > 0 && !b.IsFinished)
        {
            html.Add($"""<tr><th>Admitted</th><td id="allowance">{b.Allowance} of the {b.Wanted} indexes it would run at once</td></tr>""");
        }

        if (b.Eta is { Length: > 0 } eta && !b.IsFinished)
        {
            html.Add($"""<tr><th>ETA</th><td id="eta">{eta}</td></tr>""");
        }

        html.Add($"""
            <tr><th>Created</th><td>{Time(b.Created, context.Now)}</td></tr>
            <tr><th>Started</th><td>{Time(b.Started, context.Now)}</td></tr>
            <tr><th>Completed</th><td>{Time(b.Completed, context.Now)}</td></tr>
            </table>
            """);

        if (!string.IsNullOrEmpty(b.FailedIndexes))
        {
            html.Add($"""<h2>Failed indexes</h2><p id="failed-indexes"><code>{b.FailedIndexes}</code>{(b.FailedIndexesTruncated ? " (and more: the list was cut short)" : "")}</p>""");
        }

        if (b.Backends.Count > 1)
        {
            html.Add($"""<h2>Backends</h2><table id="backends"><thead><tr><th>Backend</th><th>Indexes</th><th>Phase</th><th class="n">Succeeded</th><th class="n">Failed</th><th class="n">Active</th></tr></thead><tbody>""");
            foreach (var share in b.Backends)
            {
                html.Add($"""<tr><td>{share.Name}</td><td><code>{share.Indexes}</code></td><td><span class="phase {share.Phase}">{share.Phase}</span></td><td class="n">{share.Succeeded}</td><td class="n">{share.Failed}</td><td class="n">{share.Active}</td></tr>""");
            }

            html.Add($"""</tbody></table>""");
        }

        if (b.Conditions.Count > 0)
        {
            html.Add($"""<h2>Conditions</h2><table id="conditions"><thead><tr><th>Type</th><th>Status</th><th>Reason</th><th>Message</th><th>Since</th></tr></thead><tbody>""");
            foreach (var c in b.Conditions)
            {
                html.Add($"""<tr data-condition="{c.Type}"><td>{c.Type}</td><td>{c.Status}</td><td>{c.Reason}</td><td class="message">{c.Message}</td><td>{Time(c.Since, context.Now)}</td></tr>""");
            }

            html.Add($"""</tbody></table>""");
        }

        return html;
    }

    /// <summary>The run's report, below the live part: its failed indexes with their reasons and logs, then its charts.</summary>
    public static HtmlWriter Results(BatchJobView b, SweepReport? report, string? store, PageContext context)
    {
        var html = new HtmlWriter().Add($"""<section id="results"><h2>Results</h2>""");
        if (store is null)
        {
            return html.Add($"""<p class="note">No results store is configured (BatchRunner:Results:Uri): no report, no logs.</p></section>""");
        }

        if (report is null)
        {
            return html.Add($"""<p class="note">{store} holds no attempt of {(b.RunId is null ? "this BatchJob" : "run " + b.RunId)} yet.</p></section>""");
        }

        var s = report.Summary;
        html.Add($"""<p id="report-summary">As of {report.GeneratedAt}: {s.Indexes} indexes, {s.Succeeded} succeeded, {s.Failed} failed, {s.Attempts} attempts, {s.ResultRows} result rows in {store}.</p>""");
        if (report.Failed.Rows.Count > 0)
        {
            html.Add($"""<h3>Failed indexes: why, and their logs</h3><table id="failures"><thead><tr><th class="n">Index</th><th>Parameters</th><th class="n">Attempts</th><th>Last status</th><th class="n">Exit code</th><th>Reason</th><th>Log</th></tr></thead><tbody>""");
            foreach (var row in report.Failed.Rows)
            {
                html.Add($"""<tr data-index="{row.Index}"><td class="n">{row.Index}</td><td><code>{row.Parameters}</code></td><td class="n">{row.Attempts}</td><td>{row.Status}</td><td class="n">{row.ExitCode}</td><td>{row.Reason}</td><td>""");
                if (row.Logs is { } log)
                {
                    html.Add($"""<a class="log" href="{log}">log</a>""");
                }

                html.Add($"""</td></tr>""");
            }

            html.Add($"""</tbody></table>""");
            if (report.Failed.Total > report.Failed.Rows.Count)
            {
                html.Add($"""<p class="note">The first {report.Failed.Rows.Count} of {report.Failed.Total} failed indexes.</p>""");
            }
        }

        return html.Add($"""
            <h3>Report</h3>
            <iframe id="report" title="Report of run {report.Run}" src="{context.Links.Report(b.Namespace, b.Name)}"></iframe>
            <p><a href="{context.Links.Report(b.Namespace, b.Name)}">Open the report on its own</a> (the same page <code>batchrunner report</code> writes).</p>
            </section>
            """);
    }

    /// <param name="queue">The Queue, or null for one its BatchJobs name that has no Queue object (the default queue).</param>
    public static HtmlWriter Queue(string name, QueueView? queue, IReadOnlyList<BatchJobView> members, PageContext context)
    {
        var links = context.Links;
        if (queue is null)
        {
            return new HtmlWriter().Add($"""
                <h1>Queue {name}</h1>
                <p id="queue-summary">No Queue object is named {name}: its BatchJobs run at their own parallelism.</p>
                <h2>In line</h2>
                {(members.Count == 0 ? Note("No unfinished BatchJob is in this queue.") : Table(members, context, "members"))}
                """);
        }

        var html = new HtmlWriter().Add($"""
            <h1>Queue {queue.Name} <span class="state">{QueueState(queue)}</span></h1>
            <p id="queue-summary">On {queue.Backends}: {queue.Admitted} indexes admitted, {queue.Pending} pending, {queue.Waiting} BatchJob(s) waiting. {queue.Usage}</p>
            """);
        if (queue.Tenants.Count > 0)
        {
            html.Add($"""<h2>Tenants</h2>""").Add($"{Tenants(queue.Tenants.Select(t => (queue.Name, t)).ToList(), links)}");
        }

        html.Add($"""<h2>In line</h2>""");
        return html.Add($"{(members.Count == 0 ? Note("No unfinished BatchJob is in this queue.") : Table(members, context, "members"))}");
    }

    public static HtmlWriter NotFound(string what, PageContext context) => new HtmlWriter().Add($"""
        <h1>Not found</h1>
        <p id="not-found">{what}</p>
        <p><a href="{context.Links.Overview}">The overview</a> · <a href="{context.Links.BatchJobs(new BatchJobFilter())}">every BatchJob</a></p>
        """);

    public static HtmlWriter BadRequest(string what) => new HtmlWriter().Add($"""<h1>Bad request</h1><p id="bad-request">{what}</p>""");

    private static HtmlWriter Note(string text) => new HtmlWriter().Add($"""<p class="note">{text}</p>""");

    private static HtmlWriter Table(IReadOnlyList<BatchJobView> rows, PageContext context, string id)
    {
        var links = context.Links;
        var html = new HtmlWriter().Add($"""
            <table class="batchjobs" id="{id}"><thead><tr><th>Namespace</th><th>BatchJob</th><th>Phase</th><th>Progress</th><th>Backend</th><th>Queue</th><th class="n">Position</th><th>Waiting because</th><th>ETA</th><th>Age</th></tr></thead><tbody>
            """);
        foreach (var b in rows)
        {
            html.Add($"""
                <tr data-key="{b.Namespace}/{b.Name}"><td>{b.Namespace}</td><td><a href="{links.BatchJob(b.Namespace, b.Name)}">{b.Name}</a></td><td><span class="phase {b.Phase}">{b.Phase}</span></td><td class="progress">{Progress(b)}</td><td>{Backends(b)}</td><td>{QueueLink(b, links)}</td><td class="n">{(b.IsFinished ? null : b.Position)}</td><td>{(b.IsWaiting ? b.WaitReason : null)}</td><td>{(b.IsFinished ? null : b.Eta)}</td><td>{Ago(b.Created, context.Now)}</td></tr>
                """);
        }

        return html.Add($"""</tbody></table>""");
    }

    private static HtmlWriter Waiting(IReadOnlyList<BatchJobView> rows, DashboardLinks links)
    {
        var html = new HtmlWriter().Add($"""<table id="waiting"><thead><tr><th>Queue</th><th class="n">Position</th><th>BatchJob</th><th>Reason</th><th>ETA</th><th>Why</th></tr></thead><tbody>""");
        foreach (var b in rows)
        {
            html.Add($"""<tr data-key="{b.Namespace}/{b.Name}"><td>{QueueLink(b, links)}</td><td class="n">{b.Position}</td><td><a href="{links.BatchJob(b.Namespace, b.Name)}">{b.Namespace}/{b.Name}</a></td><td>{b.WaitReason}</td><td>{b.Eta}</td><td class="message">{b.WaitMessage}</td></tr>""");
        }

        return html.Add($"""</tbody></table>""");
    }

    private static HtmlWriter Tenants(IReadOnlyList<(string Queue, TenantView Tenant)> rows, DashboardLinks links)
    {
        var html = new HtmlWriter().Add($"""<table id="tenants"><thead><tr><th>Queue</th><th>Tenant</th><th class="n">Weight</th><th>Fair share</th><th class="n">Usage (share·s)</th><th class="n">Admitted</th><th class="n">Pending</th></tr></thead><tbody>""");
        foreach (var (queue, t) in rows)
        {
            html.Add($"""
                <tr data-tenant="{queue}/{t.Name}"><td><a href="{links.Queue(queue)}">{queue}</a></td><td>{t.Name}</td><td class="n">{t.Weight:0.###}</td><td><meter min="0" max="1" value="{t.Share:0.####}"></meter> {t.Share:P0}</td><td class="n">{t.UsageShareSeconds:0.#}</td><td class="n">{t.Admitted}</td><td class="n">{t.Pending}</td></tr>
                """);
        }

        return html.Add($"""</tbody></table>""");
    }

    private static HtmlWriter Progress(BatchJobView b)
    {
        var html = new HtmlWriter();
        if (b.Total <= 0)
        {
            return html.Add($"—");
        }

        html.Add($"""<progress max="{b.Total}" value="{b.Done}"></progress> <span class="count">{b.Done}/{b.Total}</span>""");
        if (b.Failed > 0)
        {
            html.Add($""" <span class="failed">{b.Failed} failed</span>""");
        }

        if (b.Active > 0)
        {
            html.Add($""" <span class="active">{b.Active} running</span>""");
        }

        return html;
    }

    private static string Backends(BatchJobView b) =>
        b.Backends.Count > 1 ? string.Join(", ", b.Backends.Select(s => s.Name)) : b.Backends.Count == 1 ? b.Backends[0].Name : b.Backend ?? "";

    private static HtmlWriter QueueLink(BatchJobView b, DashboardLinks links) =>
        b.Queue is { Length: > 0 } queue ? new HtmlWriter().Add($"""<a href="{links.Queue(queue)}">{queue}</a>""") : new HtmlWriter();

    private static string QueueState(QueueView queue) => queue.Valid ? "valid" : $"refused: {queue.Message}";

    private static HtmlWriter Time(DateTimeOffset? time, DateTimeOffset now) => time is { } t
        ? new HtmlWriter().Add($"""<time datetime="{t.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}">{t.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC</time> ({Ago(t, now)} ago)""")
        : new HtmlWriter().Add($"—");

    /// <summary>How long ago, in the largest unit that fits (as kubectl's AGE column).</summary>
    public static string Ago(DateTimeOffset? time, DateTimeOffset now)
    {
        if (time is not { } t)
        {
            return "";
        }

        var age = now - t;
        return age < TimeSpan.Zero ? "0s"
            : age.TotalMinutes < 2 ? string.Create(CultureInfo.InvariantCulture, $"{(int)age.TotalSeconds}s")
            : age.TotalHours < 2 ? string.Create(CultureInfo.InvariantCulture, $"{(int)age.TotalMinutes}m")
            : age.TotalDays < 2 ? string.Create(CultureInfo.InvariantCulture, $"{(int)age.TotalHours}h")
            : string.Create(CultureInfo.InvariantCulture, $"{(int)age.TotalDays}d");
    }
}
