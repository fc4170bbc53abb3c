using System.Globalization;
using BatchRunner.Local.Execution;
using Serilog;

namespace BatchRunner.Cli.Output;

/// <summary>A run's counts at one moment, for the display.</summary>
public sealed record ProgressSnapshot(int Total, int Succeeded, int Failed, int Running, int Retrying, TimeSpan? Remaining);

/// <summary>
/// Shows a run's progress: a live line on a terminal (done / failed / running / ETA), a plain log line every
/// few seconds otherwise, so a CI log or a redirected file stays readable.
/// </summary>
public sealed class ProgressDisplay(TextWriter stderr, string jobName, TimeProvider time) : IAsyncDisposable
{
    private static readonly TimeSpan TerminalInterval = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(10);

    private readonly bool _interactive = TerminalConsole.IsInteractive(stderr);
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    public void Start(RunProgress progress) => Start(() => new ProgressSnapshot(
        progress.Total, progress.Succeeded, progress.Failed, progress.Running, progress.Retrying, progress.EstimateRemaining(time.GetUtcNow())));

    /// <summary>Shows counts read from elsewhere (a run on AWS Batch, followed by polling).</summary>
    public void Start(Func<ProgressSnapshot> read) => _loop = LoopAsync(read);

    private bool _disposed;

    /// <summary>Stops the display and clears its line; safe to call more than once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task LoopAsync(Func<ProgressSnapshot> progress)
    {
        var interval = _interactive ? TerminalInterval : PlainInterval;
        try
        {
            while (true)
            {
                await Task.Delay(interval, time, _stop.Token).ConfigureAwait(false);
                Draw(progress());
            }
        }
        catch (OperationCanceledException)
        {
            if (_interactive)
            {
                lock (TerminalConsole.Gate)
                {
                    stderr.Write(TerminalConsole.ClearLine);
                    stderr.Flush();
                }
            }
        }
    }

    private void Draw(ProgressSnapshot progress)
    {
        var eta = progress.Remaining is { } left ? FormatDuration(left) : "…";
        if (!_interactive)
        {
            Log.Information(
                "Progress {BatchJob}: {Done}/{Total} done, {Failed} failed, {Running} running, ETA {Eta}",
                jobName, progress.Succeeded, progress.Total, progress.Failed, progress.Running, eta);
            return;
        }

        const int width = 24;
        var filled = progress.Total == 0 ? width : (int)((long)width * (progress.Succeeded + progress.Failed) / progress.Total);
        var line = string.Create(
            CultureInfo.InvariantCulture,
            $"{jobName} [{new string('#', filled)}{new string('.', width - filled)}] done {progress.Succeeded}/{progress.Total} · failed {progress.Failed} · running {progress.Running}{(progress.Retrying > 0 ? $" · retrying {progress.Retrying}" : "")} · ETA {eta}");
        lock (TerminalConsole.Gate)
        {
            stderr.Write(TerminalConsole.ClearLine + line);
            stderr.Flush();
        }
    }

    public static string FormatDuration(TimeSpan span) => BatchRunner.Backends.DurationText.Format(span);
}
