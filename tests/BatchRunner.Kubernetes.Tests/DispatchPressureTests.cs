using BatchRunner.Kubernetes.Controller;
using Microsoft.Extensions.Time.Testing;

namespace BatchRunner.Kubernetes.Tests;

public sealed class DispatchPressureTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void A_controller_is_busy_from_an_arrival_until_arrivals_pause_for_the_quiet_time()
    {
        var pressure = new DispatchPressure(_time);
        Assert.False(pressure.Busy);

        pressure.Arrived();
        Assert.True(pressure.Busy);
        _time.Advance(DispatchPressure.Quiet / 2);
        pressure.Arrived();
        _time.Advance(DispatchPressure.Quiet / 2);
        Assert.True(pressure.Busy);

        _time.Advance(DispatchPressure.Quiet / 2);
        Assert.False(pressure.Busy);
    }

    [Fact]
    public void Deferred_batchjobs_are_handed_back_once_and_only_after_arrivals_pause()
    {
        var pressure = new DispatchPressure(_time);
        pressure.Arrived();
        pressure.Defer("ns/a");
        pressure.Defer("ns/b");
        pressure.Defer("ns/a");

        Assert.Empty(pressure.TakeDeferredIfQuiet());
        _time.Advance(DispatchPressure.Quiet);

        Assert.Equal(["ns/a", "ns/b"], pressure.TakeDeferredIfQuiet().Order(StringComparer.Ordinal));
        Assert.Empty(pressure.TakeDeferredIfQuiet());
    }

    [Fact]
    public void The_job_controller_is_counting_from_a_count_until_counts_pause_for_their_quiet_time()
    {
        var pressure = new DispatchPressure(_time);
        Assert.False(pressure.Counting);

        pressure.JobCounted();
        _time.Advance(DispatchPressure.CountingQuiet / 2);
        Assert.True(pressure.Counting);

        _time.Advance(DispatchPressure.CountingQuiet / 2);
        Assert.False(pressure.Counting);
        Assert.False(pressure.Busy);
    }

    [Fact]
    public void Deferred_batchjobs_wait_for_the_job_controller_to_stop_counting_as_well()
    {
        var pressure = new DispatchPressure(_time);
        pressure.Defer("ns/a");
        pressure.Defer("ns/b");
        pressure.JobCounted();

        _time.Advance(DispatchPressure.CountingQuiet / 2);
        Assert.Empty(pressure.TakeDeferredIfQuiet());
        pressure.JobCounted();
        _time.Advance(DispatchPressure.CountingQuiet / 2);
        Assert.Empty(pressure.TakeDeferredIfQuiet());

        // a's Job was counted and its status written meanwhile: only b is handed back.
        pressure.Forget("ns/a");
        _time.Advance(DispatchPressure.CountingQuiet / 2);
        Assert.Equal(["ns/b"], pressure.TakeDeferredIfQuiet());
    }

    [Fact]
    public async Task The_loop_reconciles_deferred_batchjobs_when_arrivals_pause()
    {
        var pressure = new DispatchPressure(_time);
        var reconciled = new List<string>();
        using var stop = new CancellationTokenSource();
        pressure.Arrived();
        pressure.Defer("ns/a");
        var loop = pressure.RunAsync(key => { lock (reconciled) { reconciled.Add(key); } }, stop.Token);

        _time.Advance(DispatchPressure.Quiet / 4);
        await Task.Delay(50);
        lock (reconciled)
        {
            Assert.Empty(reconciled);
        }

        for (var i = 0; i < 8 && reconciled.Count == 0; i++)
        {
            _time.Advance(DispatchPressure.Quiet / 4);
            await Task.Delay(50);
        }

        await stop.CancelAsync();
        await loop;
        Assert.Equal(["ns/a"], reconciled);
    }
}
