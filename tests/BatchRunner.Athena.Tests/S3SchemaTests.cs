using BatchRunner.Cli.Athena;
using BatchRunner.Store;
using BatchRunner.Results.Tests.Support;

namespace BatchRunner.Athena.Tests;

/// <summary>The Athena schemas read from the store on S3 (fauxqs on 127.0.0.1) are those of the same store on disk.</summary>
public sealed class S3SchemaTests
{
    [Fact]
    public async Task Schemas_are_read_from_the_manifests_on_S3_as_from_a_folder()
    {
        using var sweep = new SweepStore();
        var (s3, _) = await S3Server.Shared.NewStoreAsync();
        using (s3)
        {
            foreach (var file in Directory.EnumerateFiles(sweep.Root, "*", SearchOption.AllDirectories))
            {
                await s3.PutFileAsync(Path.GetRelativePath(sweep.Root, file).Replace('\\', '/'), file, CancellationToken.None);
            }

            var fromS3 = await CompactedRunSchemas.ReadAsync(s3, CancellationToken.None);
            var fromDisk = await CompactedRunSchemas.ReadAsync(new LocalResultsStore(sweep.Root), CancellationToken.None);

            Assert.Equal(["r00000000aaa", "r00000000bbb", "r00000000ccc", "r00000000ddd"], fromS3.Select(r => r.RunId));
            Assert.Equal(Describe(fromDisk), Describe(fromS3));
            var mmc = fromS3[0];
            Assert.Equal(
                ["arrival_rate:Double", "servers:Bigint"],
                mmc.Parameters.Select(p => $"{p.Name}:{p.Type}"));
            Assert.Equal(["mean_wait:Double", "served:Bigint", "label:String"], mmc.Outputs.Select(p => $"{p.Name}:{p.Type}"));
            Assert.Empty(fromS3[2].Parameters);
        }
    }

    [Fact]
    public async Task A_run_not_yet_compacted_is_left_out()
    {
        using var sweep = new SweepStore();
        File.Delete(Path.Combine(sweep.Root, "batchjob=mmc-sweep", "run=r00000000bbb", "_run.json"));
        var runs = await CompactedRunSchemas.ReadAsync(new LocalResultsStore(sweep.Root), CancellationToken.None);
        Assert.Equal(["r00000000aaa", "r00000000ccc", "r00000000ddd"], runs.Select(r => r.RunId));
    }

    private static string[] Describe(IEnumerable<BatchRunner.Aws.Athena.AthenaRunSchema> runs) =>
        runs.Select(r => $"{r.BatchJob}/{r.RunId}: {string.Join(",", r.Parameters.Select(p => $"{p.Name}:{p.Type}"))} | {string.Join(",", r.Outputs.Select(p => $"{p.Name}:{p.Type}"))}").ToArray();
}
