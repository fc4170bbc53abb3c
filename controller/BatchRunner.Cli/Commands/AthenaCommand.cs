using Microsoft.Extensions.Logging;
using System.CommandLine;
using BatchRunner.Aws.Athena;
using BatchRunner.Aws.Protocol;
using BatchRunner.Aws.S3;
using BatchRunner.Core.Store;
using BatchRunner.Store;
using BatchRunner.Cli.Athena;

namespace BatchRunner.Cli.Commands;

/// <summary>
/// <c>batchrunner athena ddl|setup</c>: the Athena tables and views over the S3 store's compacted runs, printed or
/// run. <c>--results</c> is the store on S3; the runs and their schemas come from its run manifests (or from
/// another copy of the store, <c>--schemas-from</c>). Running setup again after new runs are compacted registers
/// them in the views (the tables need nothing: runs are an injected projection).
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

    private static Option<string?> LocationOption() => new("--results")
    {
        Description = "The S3 store the tables read, s3://bucket/prefix (default BatchRunner__Results__Uri)",
    };

    private static Option<string?> SchemasFromOption() => new("--schemas-from")
    {
        Description = "Read the compacted runs' manifests from this store (a folder or s3://…) instead of --results, e.g. a local copy",
    };

    private static Command Ddl(TextWriter stdout, TextWriter stderr)
    {
        var location = LocationOption();
        var schemasFrom = SchemasFromOption();
        var database = new Option<string?>("--database") { Description = "Athena database (default BatchRunner__Athena__Database, else batchrunner)" };
        var command = new Command("ddl", "Print the DDL of the Athena tables and views, one statement after another") { location, schemasFrom, database };
        command.SetAction(async (parsed, cancellation) =>
        {
            var db = parsed.GetValue(database) ?? NonEmpty(Environment.GetEnvironmentVariable("BatchRunner__Athena__Database")) ?? new AthenaOptions().Database;
            var statements = await GenerateAsync(parsed, location, schemasFrom, db, stderr, cancellation).ConfigureAwait(false);
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
        var schemasFrom = SchemasFromOption();
        var athena = new AthenaCliSettings();
        var command = new Command("setup", "Create (or refresh) the Athena database, tables and views") { location, schemasFrom };
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

            var statements = await GenerateAsync(parsed, location, schemasFrom, options.Database, stderr, cancellation).ConfigureAwait(false);
            if (statements is null)
            {
                return ExitCodes.InvalidInput;
            }

            var api = connect(options);
            try
            {
                var runner = new AthenaQueryRunner(api, options, log: CliApplication.Logs.CreateLogger<AthenaQueryRunner>());
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

    private static async Task<IReadOnlyList<AthenaStatement>?> GenerateAsync(
        ParseResult parsed, Option<string?> location, Option<string?> schemasFrom, string database, TextWriter stderr, CancellationToken cancellation)
    {
        var uri = parsed.GetValue(location) ?? NonEmpty(Environment.GetEnvironmentVariable("BatchRunner__Results__Uri"));
        if (uri is null)
        {
            await stderr.WriteLineAsync("athena: --results s3://bucket/prefix is required (or BatchRunner__Results__Uri)").ConfigureAwait(false);
            return null;
        }

        // S3 settings (region, endpoint, path style) as compaction reads them: BatchRunner__Results__*.
        var results = ResultsOptions.FromEnvironment(Environment.GetEnvironmentVariable);
        IResultsStore store;
        try
        {
            store = ResultsStores.Open(parsed.GetValue(schemasFrom) ?? uri, results, path => new LocalResultsStore(path));
        }
        catch (FormatException e)
        {
            await stderr.WriteLineAsync($"athena: {e.Message}").ConfigureAwait(false);
            return null;
        }

        try
        {
            var runs = await CompactedRunSchemas.ReadAsync(store, cancellation).ConfigureAwait(false);
            return AthenaDdl.Generate(new AthenaCatalog(uri, runs), database);
        }
        catch (ArgumentException e)
        {
            await stderr.WriteLineAsync($"athena: {e.Message}").ConfigureAwait(false);
            return null;
        }
        finally
        {
            (store as IDisposable)?.Dispose();
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
