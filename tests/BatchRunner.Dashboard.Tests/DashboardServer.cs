using BatchRunner.Dashboard;
using BatchRunner.Reports;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BatchRunner.Dashboard.Tests;

/// <summary>A source whose BatchJobs and queues the test states (and changes while a page is open).</summary>
public sealed class StatedSource(bool synced = true) : IDashboardSource
{
    private DashboardSnapshot _current = DashboardSnapshot.Empty;

    public bool HasSynced { get; set; } = synced;

    public DashboardSnapshot Current => _current;

    public StatedSource With(IEnumerable<BatchJobView> batchJobs, IEnumerable<QueueView>? queues = null)
    {
        _current = new DashboardSnapshot(_current.Version + 1, batchJobs, queues ?? []);
        return this;
    }
}

/// <summary>Runs that have the report and logs a test gives them (or none).</summary>
public sealed class StatedRuns : IDashboardRuns
{
    public string? Store { get; init; } = "s3://results/test";

    public Func<BatchJobView, Func<long, long, string>, SweepReport?> Report { get; init; } = (_, _) => null;

    /// <summary>While set, a report is being built and ends when the test completes it.</summary>
    public TaskCompletionSource<SweepReport?>? Building { get; set; }

    public Dictionary<(string Name, int Index, int Attempt), LogTail> Logs { get; } = [];

    public Task<SweepReport?> ReportAsync(BatchJobView batchJob, Func<long, long, string> logLink, CancellationToken cancellation) =>
        Building is { } building ? building.Task.WaitAsync(cancellation) : Task.FromResult(Report(batchJob, logLink));

    public Task<LogTail?> LogAsync(BatchJobView batchJob, int index, int attempt, CancellationToken cancellation) =>
        Task.FromResult(Logs.GetValueOrDefault((batchJob.Name, index, attempt)));
}

/// <summary>The dashboard's endpoints in a real Kestrel on 127.0.0.1 (a free port), as the controller maps them.</summary>
public sealed class DashboardServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private DashboardServer(WebApplication app, string url)
    {
        _app = app;
        Url = url;
        Http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
    }

    public string Url { get; }

    public HttpClient Http { get; }

    public static async Task<DashboardServer> StartAsync(IDashboardSource source, IDashboardRuns? runs = null, TimeProvider? time = null, int refreshSeconds = 2, int reportWaitSeconds = 5)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Configuration["BatchRunner:Dashboard:RefreshSeconds"] = refreshSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        builder.Configuration["BatchRunner:Dashboard:ReportWaitSeconds"] = reportWaitSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        builder.Services.AddBatchRunnerDashboard();
        builder.Services.AddSingleton(source);
        builder.Services.AddSingleton(runs ?? new NoRuns());
        builder.Services.AddSingleton(time ?? TimeProvider.System);
        var app = builder.Build();
        app.MapBatchRunnerDashboard();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new DashboardServer(app, address);
    }

    public async Task<(System.Net.HttpStatusCode Status, string Body, HttpResponseMessage Response)> GetAsync(string path)
    {
        var response = await Http.GetAsync(path);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
