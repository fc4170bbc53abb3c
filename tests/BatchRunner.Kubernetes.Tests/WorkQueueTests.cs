using BatchRunner.Kubernetes.Controller;
using Microsoft.Extensions.Time.Testing;

namespace BatchRunner.Kubernetes.Tests;

public sealed class WorkQueueTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Moment = TimeSpan.FromMilliseconds(100);

    private readonly FakeTimeProvider _time = new();
    private readonly WorkQueue<string> _queue;
    private readonly CancellationTokenSource _test = new(TimeSpan.FromSeconds(30));

    public WorkQueueTests() => _queue = new WorkQueue<string>(_time);

    public void Dispose()
    {
        _queue.Dispose();
        _test.Dispose();
    }

    [Fact]
    public async Task An_item_added_three_times_is_handed_out_once()
    {
        _queue.Add("a");
        _queue.Add("a");
        _queue.Add("a");

        Assert.Equal(1, _queue.Depth);
        Assert.Equal("a", await _queue.GetAsync(_test.Token).WaitAsync(Patience));
        var next = _queue.GetAsync(_test.Token);
        await Task.Delay(Moment);
        Assert.False(next.IsCompleted);
        _queue.ShutDown();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => next);
    }

    [Fact]
    public async Task Items_are_handed_out_in_the_order_added()
    {
        _queue.Add("a");
        _queue.Add("b");
        _queue.Add("a");

        Assert.Equal("a", await _queue.GetAsync(_test.Token));
        Assert.Equal("b", await _queue.GetAsync(_test.Token));
        Assert.Equal(0, _queue.Depth);
    }

    [Fact]
    public async Task An_item_added_while_processed_is_handed_out_again_only_after_done_and_to_one_worker()
    {
        _queue.Add("a");
        var item = await _queue.GetAsync(_test.Token);
        _queue.Add("a");
        _queue.Add("a");
        var second = _queue.GetAsync(_test.Token);
        var third = _queue.GetAsync(_test.Token);

        await Task.Delay(Moment);
        Assert.False(second.IsCompleted || third.IsCompleted, "handed out while still being processed");
        Assert.Equal(0, _queue.Depth);

        _queue.Done(item);
        var winner = await Task.WhenAny(second, third).WaitAsync(Patience);
        Assert.Equal("a", await winner);
        var loser = winner == second ? third : second;
        await Task.Delay(Moment);
        Assert.False(loser.IsCompleted, "handed out to two workers");

        _queue.Done("a");
        await Task.Delay(Moment);
        Assert.False(loser.IsCompleted, "handed out again without being added again");
    }

    [Fact]
    public async Task Done_without_a_new_add_does_not_hand_the_item_out_again()
    {
        _queue.Add("a");
        _queue.Done(await _queue.GetAsync(_test.Token));

        Assert.Equal(0, _queue.Depth);
        _queue.Add("a");
        Assert.Equal("a", await _queue.GetAsync(_test.Token).WaitAsync(Patience));
    }

    [Fact]
    public void Rate_limited_adds_back_off_exponentially_per_item_until_forgotten()
    {
        var delays = Enumerable.Range(0, 5).Select(_ => _queue.AddRateLimited("a").TotalMilliseconds).ToList();
        var other = _queue.AddRateLimited("b");
        _queue.Forget("a");

        Assert.Equal([5, 10, 20, 40, 80], delays);
        Assert.Equal(TimeSpan.FromMilliseconds(5), other);
        Assert.Equal(0, _queue.Failures("a"));
        Assert.Equal(1, _queue.Failures("b"));
        Assert.Equal(TimeSpan.FromMilliseconds(5), _queue.AddRateLimited("a"));
    }

    [Fact]
    public void Rate_limited_delays_stop_growing_at_the_maximum()
    {
        using var queue = new WorkQueue<string>(_time, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));

        var delays = Enumerable.Range(0, 40).Select(_ => queue.AddRateLimited("a")).ToList();

        Assert.Equal(TimeSpan.FromSeconds(8), delays[3]);
        Assert.All(delays.Skip(4), d => Assert.Equal(TimeSpan.FromSeconds(10), d));
    }

    [Fact]
    public async Task A_rate_limited_item_arrives_when_its_backoff_has_passed()
    {
        _queue.AddRateLimited("a");
        _queue.AddRateLimited("a");

        _time.Advance(TimeSpan.FromMilliseconds(4));
        Assert.Equal(0, _queue.Depth);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal("a", await _queue.GetAsync(_test.Token).WaitAsync(Patience));
    }

    [Fact]
    public async Task An_item_added_after_a_delay_arrives_only_when_the_clock_has_moved_that_far()
    {
        _queue.AddAfter("a", TimeSpan.FromSeconds(30));

        _time.Advance(TimeSpan.FromSeconds(29));
        await Task.Delay(Moment);
        Assert.Equal(0, _queue.Depth);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("a", await _queue.GetAsync(_test.Token).WaitAsync(Patience));
    }

    [Fact]
    public async Task Requeues_after_several_delays_wait_once_for_the_earliest_and_hand_the_item_out_once()
    {
        _queue.AddAfter("a", TimeSpan.FromSeconds(60));
        _queue.AddAfter("a", TimeSpan.FromSeconds(5));
        _queue.AddAfter("a", TimeSpan.FromSeconds(60));
        Assert.Equal(1, _queue.Waiting);

        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal("a", await _queue.GetAsync(_test.Token).WaitAsync(Patience));
        _queue.Done("a");
        Assert.Equal(0, _queue.Waiting);

        // The 60-second timers that were outdone add nothing when they come due.
        _time.Advance(TimeSpan.FromSeconds(60));
        await Task.Delay(Moment);
        Assert.Equal(0, _queue.Depth);
    }

    [Fact]
    public async Task A_later_requeue_asked_after_the_earlier_one_came_due_waits_for_its_own_time()
    {
        _queue.AddAfter("a", TimeSpan.FromSeconds(5));
        _queue.AddAfter("a", TimeSpan.FromSeconds(10));
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal("a", await _queue.GetAsync(_test.Token).WaitAsync(Patience));
        _queue.Done("a");

        _queue.AddAfter("a", TimeSpan.FromSeconds(30));
        _time.Advance(TimeSpan.FromSeconds(10));
        await Task.Delay(Moment);
        Assert.Equal(0, _queue.Depth);
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal("a", await _queue.GetAsync(_test.Token).WaitAsync(Patience));
    }

    [Fact]
    public async Task A_reschedule_replaces_the_looks_asked_before_it_even_a_sooner_one()
    {
        _queue.AddAfter("a", TimeSpan.FromSeconds(2));
        _queue.AddAfter("b", TimeSpan.FromSeconds(2));

        _queue.Reschedule("a", TimeSpan.FromSeconds(60));
        _queue.Reschedule("b", null);
        _time.Advance(TimeSpan.FromSeconds(2));
        await Task.Delay(Moment);
        Assert.Equal(0, _queue.Depth);
        Assert.Equal(1, _queue.Waiting);

        _time.Advance(TimeSpan.FromSeconds(58));
        Assert.Equal("a", await _queue.GetAsync(_test.Token).WaitAsync(Patience));
    }

    [Fact]
    public async Task Items_waiting_together_each_arrive_at_their_own_time_in_order()
    {
        _queue.AddAfter("late", TimeSpan.FromSeconds(3));
        _queue.AddAfter("first", TimeSpan.FromSeconds(1));
        _queue.AddAfter("second", TimeSpan.FromSeconds(2));
        _queue.AddAfter("withdrawn", TimeSpan.FromMilliseconds(500));
        _queue.Reschedule("withdrawn", null);

        foreach (var expected in new[] { "first", "second", "late" })
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(expected, await _queue.GetAsync(_test.Token).WaitAsync(Patience));
            Assert.Equal(0, _queue.Depth);
        }

        Assert.Equal(0, _queue.Waiting);
    }

    [Fact]
    public async Task Many_items_due_at_the_same_moment_all_arrive_once()
    {
        var items = Enumerable.Range(0, 200).Select(i => $"item-{i}").ToList();
        foreach (var item in items)
        {
            _queue.AddAfter(item, TimeSpan.FromSeconds(2));
        }

        _time.Advance(TimeSpan.FromSeconds(2));
        var arrived = new List<string>();
        for (var i = 0; i < items.Count; i++)
        {
            arrived.Add(await _queue.GetAsync(_test.Token).WaitAsync(Patience));
        }

        Assert.Equal(items.Order(StringComparer.Ordinal), arrived.Order(StringComparer.Ordinal));
        Assert.Equal(0, _queue.Depth);
        Assert.Equal(0, _queue.Waiting);
    }

    [Fact]
    public void A_delay_of_zero_adds_at_once()
    {
        _queue.AddAfter("a", TimeSpan.Zero);

        Assert.Equal(1, _queue.Depth);
    }

    [Fact]
    public async Task Shutting_down_ends_waiting_workers_and_refuses_new_items()
    {
        var waiting = _queue.GetAsync(_test.Token);

        _queue.ShutDown();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Patience));
        _queue.Add("a");
        Assert.Equal(0, _queue.Depth);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _queue.GetAsync(_test.Token));
    }

    [Fact]
    public async Task Shutting_down_drops_items_waiting_for_their_delay()
    {
        _queue.AddAfter("a", TimeSpan.FromSeconds(1));

        _queue.ShutDown();
        _time.Advance(TimeSpan.FromSeconds(2));
        await Task.Delay(Moment);

        Assert.Equal(0, _queue.Depth);
    }
}
