using System.Text.Json;
using BatchRunner.Backends;
using BatchRunner.Core.Runs;
using BatchRunner.Core.Spec;
using BatchRunner.Local.Execution;
using Xunit;

namespace BatchRunner.Local.Tests;

/// <summary>The seam's own parts: the registry, the usage a backend reports, index selections, and the local backend behind it.</summary>
public sealed class BackendSeamTests : IDisposable
{
    private readonly LocalRun _run = new();

    public void Dispose() => _run.Dispose();

    private static BackendRun RunOf(BatchJob job, IndexSelection? indexes = null) =>
        new(job, job.Metadata.Namespace, job.Metadata.Name, "uid", 1, RunIdentity.For(job), indexes ?? IndexSelection.All, null, AllowSubmit: true);

    private static BackendProgress Progress(RunPhase phase, int active) =>
        new(phase, 10, 0, 0, active, null, null, null, true, "R", "m", null, null, null, TimeSpan.Zero);

    public static TheoryData<string, int, long, long, int?> Usage => new()
    {
        // what is observed (run:phase:active, …), then the running indexes, millicores, bytes and room reported
        { "", 0, 0, 0, 8 },
        { "a:Running:3", 3, 1500, 3L << 30, 5 },
        { "a:Running:3,b:Running:2", 5, 2500, 5L << 30, 3 },
        { "a:Running:3,a:Running:1", 1, 500, 1L << 30, 7 },
        { "a:Running:3,a:Succeeded:0", 0, 0, 0, 8 },
        { "a:Running:6,b:Running:6", 12, 6000, 12L << 30, 0 },
        // a BatchJob gone (deleted without a release): its runs are forgotten, another whose name starts alike is not
        { "a:Running:3,ab:Running:2,a:Gone:0", 2, 1000, 2L << 30, 6 },
    };

    [Theory]
    [MemberData(nameof(Usage))]
    public void A_backend_reports_what_its_runs_last_said_they_run_and_the_room_left(string observed, int running, long milliCpu, long memory, int? free)
    {
        var tally = new UsageTally(maxIndexes: 8);
        foreach (var item in observed.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var (name, phase, active) = (item.Split(':')[0], item.Split(':')[1], int.Parse(item.Split(':')[2]));
            var run = RunOf(_run.Job("true", "resources: {cpu: 500m, memory: 1Gi}", name));
            if (phase == "Gone")
            {
                tally.Forget(run.Namespace, run.Name);
            }
            else
            {
                tally.Observe(run, Progress(Enum.Parse<RunPhase>(phase), active));
            }
        }

        Assert.Equal(new BackendCapacity(running, milliCpu, memory, free), tally.Capacity);
    }

    [Fact]
    public void A_registry_resolves_by_name_makes_a_backend_only_when_asked_and_names_the_backends_it_has_when_it_refuses()
    {
        var made = 0;
        var registry = new BackendRegistry("this host",
            [(Backend.Local, () => { made++; return new LocalBackend(new LocalExecutor(new LocalRunOptions { StoreRoot = _run.Store }, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<LocalExecutor>.Instance), _run.Store, TimeProvider.System, default); })],
            [new DisabledBackend(Backend.AwsBatch, "first reason"), new DisabledBackend(Backend.AwsBatch, "second reason"), new DisabledBackend(Backend.Local, "ignored: it is enabled")]);

        Assert.Null(registry.Check(Backend.Local));
        Assert.Equal(0, made);
        Assert.Equal("spec.backend: aws-batch is not enabled in this host: first reason (backends here: local)", registry.Check(Backend.AwsBatch)!.ToString());
        Assert.Equal("spec.backend: slurm is not a backend of this host (backends here: local)", registry.Check(Backend.Parse("slurm"))!.ToString());
        Assert.Same(registry.Resolve(Backend.Local), registry.Resolve(Backend.Local));
        Assert.Equal(1, made);
        var refused = Assert.Throws<InvalidSpecException>(() => registry.Resolve(Backend.Kubernetes));
        Assert.Equal("spec.backend", Assert.Single(refused.Errors).Path);
        Assert.Throws<ArgumentException>(() => new BackendRegistry("h", [(Backend.Local, () => null!), (Backend.Local, () => null!)]));
    }

    [Theory]
    [InlineData(new[] { 3, 7, 8, 9 }, "3,7-9", 4, 10)]
    [InlineData(new[] { 0 }, "0", 1, 10)]
    [InlineData(new[] { 5, 12 }, "5,12", 1, 10)]
    public void An_index_selection_is_kept_as_ranges_and_counts_within_the_run(int[] indexes, string ranges, int count, int total)
    {
        var selection = IndexSelection.Of(indexes);

        Assert.Equal((ranges, false, count), (selection.Ranges, selection.IsAll, selection.CountOf(total)));
        Assert.All(indexes, i => Assert.True(selection.Contains(i)));
        Assert.False(selection.Contains(1));
        Assert.Equal(total, IndexSelection.All.CountOf(total));
    }

    [Fact]
    public async Task The_local_backend_runs_a_whole_run_says_how_many_run_and_starts_nothing_it_is_not_allowed_to()
    {
        var backend = new LocalBackend(_run.Executor(), _run.Store, TimeProvider.System, default, TimeSpan.FromMilliseconds(50));
        var job = _run.Job("sleep 0.3", "completions: 4\nparallelism: 2\nresources: {cpu: 250m, memory: 512Mi}");

        var notAllowed = await backend.AdvanceAsync(RunOf(job) with { AllowSubmit = false }, (_, _) => Task.CompletedTask, default);
        Assert.Equal((false, RunPhase.Pending, 0), (notAllowed.Dispatched, notAllowed.Phase, backend.Capacity.RunningIndexes));

        var states = new List<JsonElement>();
        BackendProgress progress;
        var sawRunning = false;
        do
        {
            progress = await backend.AdvanceAsync(RunOf(job), (state, _) => { states.Add(state); return Task.CompletedTask; }, default);
            if (progress.Active == 2)
            {
                sawRunning = true;
                Assert.Equal(new BackendCapacity(2, 500, 1L << 30, Math.Max(0, Environment.ProcessorCount - 2)), backend.Capacity);
            }
        }
        while (!progress.IsTerminal);

        Assert.True(sawRunning, "the run was seen with its two indexes running");
        Assert.Equal((RunPhase.Succeeded, 4, 4), (progress.Phase, progress.Total, progress.Succeeded));
        Assert.Empty(states);
        Assert.Equal(0, backend.Capacity.RunningIndexes);
        Assert.StartsWith("4 attempts in ", progress.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_local_backend_starts_nothing_without_an_allowance_runs_within_it_and_follows_a_raised_one()
    {
        var backend = new LocalBackend(_run.Executor(), _run.Store, TimeProvider.System, default, TimeSpan.FromMilliseconds(50));
        var job = _run.Job("sleep 0.4", "completions: 8\nparallelism: 4");

        var queued = await backend.AdvanceAsync(RunOf(job) with { Allowance = 0 }, (_, _) => Task.CompletedTask, default);
        Assert.Equal((false, BackendReasons.Queued, RunPhase.Pending), (queued.Dispatched, queued.Reason, queued.Phase));
        Assert.Equal(0, backend.Capacity.RunningIndexes);

        var mostAtOnce = 0;
        BackendProgress progress;
        for (var call = 0; call < 12; call++)
        {
            progress = await backend.AdvanceAsync(RunOf(job) with { Allowance = 1 }, (_, _) => Task.CompletedTask, default);
            mostAtOnce = Math.Max(mostAtOnce, progress.Active);
        }

        Assert.Equal(1, mostAtOnce);
        var raised = 0;
        do
        {
            progress = await backend.AdvanceAsync(RunOf(job) with { Allowance = 3 }, (_, _) => Task.CompletedTask, default);
            raised = Math.Max(raised, progress.Active);
            Assert.InRange(progress.Active, 0, 3);
        }
        while (!progress.IsTerminal);

        Assert.True(raised > 1, $"with the allowance raised to 3, at most {raised} ran at once");
        Assert.Equal((RunPhase.Succeeded, 8), (progress.Phase, progress.Succeeded));
    }

    [Fact]
    public async Task A_lowered_concurrency_limit_stops_nothing_and_holds_back_the_next_until_the_run_is_within_it()
    {
        var limit = new ConcurrencyLimit(2);
        await limit.EnterAsync(default);
        await limit.EnterAsync(default);

        limit.Limit = 1;
        var third = limit.EnterAsync(default);
        limit.Exit();
        await Task.Delay(50);
        Assert.False(third.IsCompleted, "one still going: a limit of 1 holds the next back");

        limit.Exit();
        await third.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1, limit.InUse);

        limit.Limit = 0;
        using var cancel = new CancellationTokenSource(100);
        limit.Exit();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => limit.EnterAsync(cancel.Token));
    }
}
