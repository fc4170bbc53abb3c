using System.CommandLine;
using BatchRunner.Cli.Commands;
using BatchRunner.Cli.Output;
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

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("BatchRunner: one BatchJob spec, run as a parameter sweep on this machine, Kubernetes or AWS Batch.")
        {
            StoreOption,
            VerboseOption,
        };
        root.Add(RunCommand.Create(stdout, stderr));
        root.Add(StatusCommand.Create(stdout));
        root.Add(QueryCommand.Create(stdout, stderr));
        root.Add(CancelCommand.Create(stdout, stderr));
        root.Add(ValidateCommand.Create(stdout, stderr));
        root.Add(SubmitCommand.Create(stdout, stderr));
        root.Add(AthenaCommand.Create(stdout, stderr));
        root.Add(CompactCommand.Create(stdout, stderr));

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

        Log.Logger = CreateLogger(parsed.GetValue(VerboseOption), stderr);
        try
        {
            // Ctrl-C and SIGTERM cancel the action's token; the runner then needs a moment to stop its processes and record them.
            return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30), Output = stdout, Error = stderr })
                .ConfigureAwait(false);
        }
        finally
        {
            await Log.CloseAndFlushAsync().ConfigureAwait(false);
        }
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
