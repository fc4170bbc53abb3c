using BatchRunner.Exec;
using Serilog;
using Serilog.Events;

// Everything the wrapper says goes to standard error, so the command's standard output stays its own.
using var log = new LoggerConfiguration()
    .MinimumLevel.Information()
    .WriteTo.Console(outputTemplate: "{Message:lj}{NewLine}{Exception}", standardErrorFromLevel: LogEventLevel.Verbose)
    .CreateLogger();
return await new ResultsWrapper(Environment.GetEnvironmentVariable, log, TimeProvider.System).RunAsync(args, CancellationToken.None).ConfigureAwait(false);
