using Amazon.Runtime;
using BatchRunner.Athena.Tests.Stub;
using BatchRunner.Aws.Athena;
using BatchRunner.Aws.Protocol;
using BatchRunner.Cli.Athena;

namespace BatchRunner.Athena.Tests;

/// <summary>
/// The sweep store, a stub Athena over its bucket, and the Athena objects created in it by running the generated
/// DDL through the client, as <c>batchrunner athena setup</c> does.
/// </summary>
public sealed class AthenaFixture : IAsyncLifetime
{
    internal SweepStore Store { get; } = new();

    internal AthenaStub Stub { get; private set; } = null!;

    public static AthenaOptions Options(Uri endpoint) => new()
    {
        Database = "batchrunner",
        WorkGroup = "primary",
        OutputLocation = "s3://query-results/batchrunner/",
        Region = "eu-west-1",
        EndpointUrl = endpoint.ToString(),
        PollInterval = TimeSpan.FromMilliseconds(10),
        MaxPollInterval = TimeSpan.FromMilliseconds(50),
    };

    public static IAwsCredentialSource Credentials { get; } = new StaticAwsCredentialSource(new ImmutableCredentials("AKIDEXAMPLE", "not-a-secret", null));

    /// <summary>A client of the stub (or of <paramref name="endpoint"/> in front of it); retries fast, so throttling costs the tests little time.</summary>
    internal AthenaApiClient Client(Uri? endpoint = null) => new(new AwsJsonClient(
        new AwsServiceOptions
        {
            ServiceId = "athena", SigningName = "athena", Region = "eu-west-1", EndpointUrl = (endpoint ?? Stub.Url).ToString(),
            RetryBaseDelay = TimeSpan.FromMilliseconds(5), MaxAttempts = 8,
        },
        AwsJsonClient.PascalCaseJson(), credentials: Credentials));

    internal AthenaQueryRunner Runner(AthenaApiClient client) => new(client, Options(Stub.Url));

    public IReadOnlyList<AthenaStatement> Statements { get; private set; } = [];

    public async Task InitializeAsync()
    {
        Stub = await AthenaStub.StartAsync(new Dictionary<string, string> { [SweepStore.Bucket] = Store.BucketRoot }).ConfigureAwait(false);
        Stub.ThrottleEvery = 7;
        var schemas = await CompactedRunSchemas.ReadAsync(new BatchRunner.Store.LocalResultsStore(Store.Root), CancellationToken.None).ConfigureAwait(false);
        Statements = AthenaDdl.Generate(new AthenaCatalog(Store.StoreUri, schemas), "batchrunner");
        using var client = Client();
        var runner = Runner(client);
        foreach (var statement in Statements)
        {
            await runner.RunAsync(statement.Sql, CancellationToken.None, statement.NeedsDatabase).ConfigureAwait(false);
        }
    }

    public async Task DisposeAsync()
    {
        await Stub.DisposeAsync().ConfigureAwait(false);
        Store.Dispose();
    }
}
