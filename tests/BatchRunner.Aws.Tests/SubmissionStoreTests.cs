using BatchRunner.Local.Intake;
using Microsoft.Extensions.Time.Testing;

namespace BatchRunner.Aws.Tests;

public sealed class SubmissionStoreTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("batchrunner-submissions-").FullName;

    private static Submission Of(string name, string hash = "sha256:a", string ns = "default") => new(ns, name, hash, "{}", "sqs:m-" + name);

    [Fact]
    public async Task Recording_is_idempotent_by_namespace_and_name_and_other_content_is_a_conflict()
    {
        await using var store = SubmissionStore.Open(_root);

        Assert.Equal(RecordOutcome.Created, (await store.RecordAsync(Of("job"))).Outcome);
        Assert.Equal(RecordOutcome.AlreadyRecorded, (await store.RecordAsync(Of("job"))).Outcome);
        Assert.Equal(new RecordResult(RecordOutcome.Conflict, "sha256:a"), await store.RecordAsync(Of("job", hash: "sha256:b")));
        Assert.Equal(RecordOutcome.Created, (await store.RecordAsync(Of("job", ns: "team-a", hash: "sha256:b"))).Outcome);

        var job = store.Find("default", "job")!;
        Assert.Equal(("sha256:a", SubmissionState.Pending, "sqs:m-job"), (job.ContentHash, job.State, job.Source));
        Assert.Equal(2, store.List().Count);
    }

    [Fact]
    public async Task Concurrent_records_create_each_key_once_and_are_on_disk_when_they_return()
    {
        await using (var store = SubmissionStore.Open(_root))
        {
            var same = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => Task.Run(() => store.RecordAsync(Of("contended")))));
            var distinct = await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => Task.Run(() => store.RecordAsync(Of($"job-{i}")))));

            Assert.Single(same, r => r.Outcome == RecordOutcome.Created);
            Assert.All(distinct, r => Assert.Equal(RecordOutcome.Created, r.Outcome));
        }

        await using var reopened = SubmissionStore.Open(_root);
        Assert.Equal(1001, reopened.List().Count);
    }

    [Fact]
    public async Task Runnable_lists_unfinished_submissions_oldest_first_leaving_out_running_and_deferred_ones()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-07-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var store = SubmissionStore.Open(_root, time);
        foreach (var name in new[] { "a", "b", "c", "d", "e" })
        {
            await store.RecordAsync(Of(name));
        }

        store.MarkStarted("default", "a", "r1");
        store.MarkFinished("default", "b", SubmissionState.Succeeded, null);
        store.Defer("default", "c", time.GetUtcNow().AddSeconds(30), "busy");

        Assert.Equal(["a", "d", "e"], store.Runnable(10, []).Select(s => s.Name));
        Assert.Equal(["d"], store.Runnable(1, ["default/a"]).Select(s => s.Name));

        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(["a", "c", "d", "e"], store.Runnable(10, []).Select(s => s.Name));
        var started = store.Find("default", "a")!;
        Assert.Equal((SubmissionState.Running, "r1", 1), (started.State, started.RunId, started.Starts));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
