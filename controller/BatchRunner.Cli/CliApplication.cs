using System.CommandLine;
using BatchRunner.Cli.Commands;
using BatchRunner.Cli.Output;
using BatchRunner.Core.Runs;
using Serilog;
using Serilog.Events;

namespace BatchRunner.Cli;

/// <summary>The <c>batchrunner</c> command line: its commands, its logging, its exit codes.</summary>
public static class CliApplication
{
    /// <summary>Where the local store is, for every command.</summary>
    public static readonly Option<string?> StoreOption = new("--store")
    {
        Description = $"Store root (state and results); default ${StoreLocation.EnvironmentVariable} or ./{StoreLocation.DefaultFolder}",
        Recursive = true,
    };

    public static readonly Option<bool> VerboseOption = new("--verbose", "-v")
    {
        Description = "Log every index's attempts, not only failures",
        Recursive = true,
    };

    /// <summary>
    /// The libraries' loggers (<c>ILogger&lt;T&gt;</c>), written by the CLI's Serilog logger: set for each command line,
    /// as <see cref="Log.Logger"/> is.
    /// </summary>
    internal static Microsoft.Extensions.Logging.ILoggerFactory Logs { get; private set; } = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;

    /// <param name="backends">Backends beside the CLI's own (<see cref="CliBackends"/>), by name: how a host embedding the CLI, or a test, adds one.</param>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, IEnumerable<BatchRunner.Backends.IBatchBackend>? backends = null)
    {
        var root = new RootCommand("BatchRunner: one BatchJob spec, run as a parameter sweep on this machine, Kubernetes or AWS Batch.")
        {
            StoreOption,
            VerboseOption,
        };
        root.Add(RunCommand.Create(stdout, stderr, backends));
        root.Add(RerunCommand.Create(stdout, stderr, backends));
        root.Add(ExplainCommand.Create(stdout, stderr));
        root.Add(StatusCommand.Create(stdout));
        root.Add(QueryCommand.Create(stdout, stderr));
        root.Add(CancelCommand.Create(stdout, stderr));
        root.Add(ValidateCommand.Create(stdout, stderr));
        root.Add(SubmitCommand.Create(stdout, stderr));
        root.Add(AthenaCommand.Create(stdout, stderr));
        root.Add(CompactCommand.Create(stdout, stderr));
        root.Add(QueueCommand.Create(stdout, stderr));
        root.Add(LogsCommand.Create(stdout, stderr));
        root.Add(ListCommand.Create(stdout));
        root.Add(DeleteCommand.Create(stdout, stderr));
        root.Add(CostCommand.Create(stdout, stderr));
        root.Add(ReportCommand.Create(stdout, stderr));

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                await stderr.WriteLineAsync($"batchrunner: {error.Message}").ConfigureAwait(false);
            }

            await stderr.WriteLineAsync("Run 'batchrunner --help' for usage.").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }

        var verbose = parsed.GetValue(VerboseOption);
        Log.Logger = CreateLogger(verbose, stderr);
        Logs = new Serilog.Extensions.Logging.SerilogLoggerFactory(Log.Logger);
        try
        {
            // Ctrl-C and SIGTERM cancel the action's token; the runner then needs a moment to stop its processes and record them.
            return await parsed.InvokeAsync(new InvocationConfiguration
            {
                ProcessTerminationTimeout = TimeSpan.FromSeconds(30), Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false,
            }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return await ReportFailureAsync(e, verbose, stderr).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await stderr.WriteLineAsync("batchrunner: cancelled").ConfigureAwait(false);
            return ExitCodes.Cancelled;
        }
        finally
        {
            await Log.CloseAndFlushAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// What went wrong, said as an answer rather than a stack trace (that comes with --verbose): a store that cannot
    /// be used (corrupt state, no space, no permission, a file where a folder should be) is named with what to do and
    /// exits 74; anything else is BatchRunner's own fault and exits 70. Either way nothing already stored is removed.
    /// </summary>
    private static async Task<int> ReportFailureAsync(Exception e, bool verbose, TextWriter stderr)
    {
        var store = e is Microsoft.Data.Sqlite.SqliteException or IOException or UnauthorizedAccessException;
        var message = e switch
        {
            Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 11 or 26 } sqlite =>
                $"the store's state database is corrupt or not a database ({sqlite.Message.TrimEnd('.')}). Nothing was changed. Move {Local.State.RunStateStore.FileName} aside to start a new one: the results and ledger files stay and are still queried",
            Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 13 } => "no space left to write the store's state database; free some space and run again (what was recorded is kept)",
            Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 10 } sqlite =>
                $"the store's state database could not be written ({sqlite.Message.TrimEnd('.')}): is the disk full? Free some space and run again (what was recorded is kept)",
            Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 8 or 14 } sqlite => $"the store's state database cannot be written ({sqlite.Message.TrimEnd('.')}); check the store folder's permissions",
            Microsoft.Data.Sqlite.SqliteException sqlite => $"the store's state database failed: {sqlite.Message.TrimEnd('.')}",
            IOException io when io.HResult == 28 || io.Message.Contains("No space left", StringComparison.Ordinal) => $"no space left on the store's disk ({io.Message.TrimEnd('.')}); free some space and run again (what was recorded is kept)",
            IOException io => $"the store cannot be used: {io.Message.TrimEnd('.')}",
            UnauthorizedAccessException denied => $"the store cannot be written: {denied.Message.TrimEnd('.')}",
            _ => $"internal error: {e.GetType().Name}: {e.Message.TrimEnd('.')}. This is a bug in BatchRunner; run with --verbose for details and report it",
        };
        await stderr.WriteLineAsync($"batchrunner: {TerminalText.Safe(message)}").ConfigureAwait(false);
        if (verbose)
        {
            await stderr.WriteLineAsync(e.ToString()).ConfigureAwait(false);
        }

        return store ? ExitCodes.StoreUnusable : ExitCodes.InternalError;
    }

    private static Serilog.Core.Logger CreateLogger(bool verbose, TextWriter stderr)
    {
        var interactive = TerminalConsole.IsInteractive(stderr);
        var minimum = verbose ? LogEventLevel.Debug : interactive ? LogEventLevel.Warning : LogEventLevel.Information;
        return new LoggerConfiguration()
            .MinimumLevel.Is(minimum)
            .Enrich.FromLogContext()
            .WriteTo.Sink(new StderrSink(stderr, interactive, minimum))
            .CreateLogger();
    }
}
