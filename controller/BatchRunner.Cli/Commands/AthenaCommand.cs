using System.CommandLine;
using BatchRunner.Aws.Athena;
using BatchRunner.Aws.Protocol;
using BatchRunner.Cli.Athena;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner athena ddl|setup</c>: the Athena tables and views over the S3 store's compacted runs, printed or
/// run. The schemas come from the compacted files of the store given with <c>--store</c> (the local store, or a
/// local copy of the S3 one); <c>--location</c> is where those runs are on S3. Running setup again after new runs
/// registers them in the views (the tables need nothing: runs are an injected projection).
/// </summary>
public static class AthenaCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr) => Create(stdout, stderr, options => AthenaApiClient.Create(options));

    /// <param name="connect">Makes the Athena client (tests point it at a stub).</param>
    public static Command Create(TextWriter stdout, TextWriter stderr, Func<AthenaOptions, IAthenaApi> connect)
    {
        var command = new Command("athena", "Athena tables and views over the results store on S3");
        command.Add(Ddl(stdout, stderr));
        command.Add(Setup(stdout, stderr, connect));
        return command;
    }

    private static Option<string?> LocationOption() => new("--location")
    {
        Description = "The S3 store the tables read, s3://bucket/prefix (default BatchRunner__Results__Uri)",
    };

    private static Command Ddl(TextWriter stdout, TextWriter stderr)
    {
        var location = LocationOption();
        var database = new Option<string?>("--database") { Description = "Athena database (default BatchRunner__Athena__Database, else batchrunner)" };
        var command = new Command("ddl", "Print the DDL of the Athena tables and views, one statement after another") { location, database };
        command.SetAction(async parsed =>
        {
            var db = parsed.GetValue(database) ?? NonEmpty(Environment.GetEnvironmentVariable("BatchRunner__Athena__Database")) ?? new AthenaOptions().Database;
            var statements = await GenerateAsync(parsed, location, db, stderr).ConfigureAwait(false);
            if (statements is null)
            {
                return ExitCodes.InvalidInput;
            }

            foreach (var statement in statements)
            {
                await stdout.WriteAsync($"-- {statement.Purpose}\n{statement.Sql};\n\n").ConfigureAwait(false);
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }

    private static Command Setup(TextWriter stdout, TextWriter stderr, Func<AthenaOptions, IAthenaApi> connect)
    {
        var location = LocationOption();
        var athena = new AthenaCliSettings();
        var command = new Command("setup", "Create (or refresh) the Athena database, tables and views") { location };
        foreach (var option in athena.All)
        {
            command.Add(option);
        }

        command.SetAction(async (parsed, cancellation) =>
        {
            var (options, errors) = athena.Resolve(parsed);
            if (options is null)
            {
                foreach (var error in errors)
                {
                    await stderr.WriteLineAsync($"athena setup: {error}").ConfigureAwait(false);
                }

                return ExitCodes.InvalidInput;
            }

            var statements = await GenerateAsync(parsed, location, options.Database, stderr).ConfigureAwait(false);
            if (statements is null)
            {
                return ExitCodes.InvalidInput;
            }

            var api = connect(options);
            try
            {
                var runner = new AthenaQueryRunner(api, options, log: Serilog.Log.Logger);
                foreach (var statement in statements)
                {
                    await runner.RunAsync(statement.Sql, cancellation, statement.NeedsDatabase).ConfigureAwait(false);
                    await stdout.WriteLineAsync(statement.Purpose).ConfigureAwait(false);
                }
            }
            catch (AthenaQueryFailedException e)
            {
                await stderr.WriteLineAsync($"athena setup: {e.Message}").ConfigureAwait(false);
                return ExitCodes.JobFailed;
            }
            catch (AwsServiceException e)
            {
                await stderr.WriteLineAsync($"athena setup: Athena refused a statement: {e.ErrorCode}: {e.ServiceMessage}").ConfigureAwait(false);
                return ExitCodes.JobFailed;
            }
            catch (AwsConfigurationException e)
            {
                await stderr.WriteLineAsync($"athena setup: {e.Message}").ConfigureAwait(false);
                return ExitCodes.InvalidInput;
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                return ExitCodes.Cancelled;
            }
            finally
            {
                (api as IDisposable)?.Dispose();
            }

            return ExitCodes.Succeeded;
        });
        return command;
    }

    private static async Task<IReadOnlyList<AthenaStatement>?> GenerateAsync(ParseResult parsed, Option<string?> location, string database, TextWriter stderr)
    {
        var uri = parsed.GetValue(location) ?? NonEmpty(Environment.GetEnvironmentVariable("BatchRunner__Results__Uri"));
        if (uri is null)
        {
            await stderr.WriteLineAsync("athena: --location s3://bucket/prefix is required (or BatchRunner__Results__Uri)").ConfigureAwait(false);
            return null;
        }

        var store = StoreLocation.Resolve(parsed.GetValue(CliApplication.StoreOption));
        try
        {
            return AthenaDdl.Generate(new AthenaCatalog(uri, CompactedRunSchemas.Read(store)), database);
        }
        catch (ArgumentException e)
        {
            await stderr.WriteLineAsync($"athena: {e.Message}").ConfigureAwait(false);
            return null;
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
