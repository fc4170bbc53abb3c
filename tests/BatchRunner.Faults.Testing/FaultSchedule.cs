namespace BatchRunner.Faults.Testing;

/// <summary>Faults at random moments from a seed (the same seed, the same faults in the same order), for a bounded time.</summary>
public static class FaultSchedule
{
    /// <summary>
    /// Until <paramref name="duration"/> has passed: a fault of a kind drawn at random (latency of 0.1–0.8 s for 1–3 s,
    /// every connection reset, connections refused for 1–3 s, the next 1–3 responses cut), then a pause of 0.3–1.5 s
    /// (or as long as <paramref name="pauses"/> says, for a low rate of faults over a long run). In front of a plain-HTTP
    /// server, <paramref name="answers"/> adds a fifth kind: the next 1–3 requests answered with one of them (a 503, a 429);
    /// and <paramref name="loseAnswersTo"/> a sixth: the answers to the next 1–2 requests to one of those paths are lost
    /// after the server did them.
    /// </summary>
    public static async Task RunAsync(
        FaultProxy proxy, TimeSpan duration, int seed, (TimeSpan Least, TimeSpan Most)? pauses = null, IReadOnlyList<HttpAnswer>? answers = null,
        IReadOnlyList<string>? loseAnswersTo = null, CancellationToken cancellation = default)
    {
        var (least, most) = pauses ?? (TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(1500));
        var random = new Random(seed);
        var until = DateTime.UtcNow + duration;
        while (DateTime.UtcNow < until && !cancellation.IsCancellationRequested)
        {
            var kind = loseAnswersTo is { Count: > 0 } && random.Next(4) == 0 ? FaultKind.Lost
                : answers is { Count: > 0 } && random.Next(5) == 0 ? FaultKind.Answered
                : (FaultKind)random.Next(4);
            switch (kind)
            {
                case FaultKind.Lost:
                    proxy.LoseAnswersTo(loseAnswersTo![random.Next(loseAnswersTo.Count)], random.Next(1, 3));
                    break;
                case FaultKind.Answered:
                    proxy.AnswerNext(random.Next(1, 4), answers![random.Next(answers.Count)]);
                    break;
                case FaultKind.Latency:
                    await proxy.SlowForAsync(TimeSpan.FromMilliseconds(random.Next(100, 800)), TimeSpan.FromSeconds(random.Next(1, 4)), cancellation).ConfigureAwait(false);
                    break;
                case FaultKind.Reset:
                    proxy.ResetAll();
                    break;
                case FaultKind.Refused:
                    await proxy.RefuseForAsync(TimeSpan.FromSeconds(random.Next(1, 4)), cancellation).ConfigureAwait(false);
                    break;
                case FaultKind.Truncated:
                    proxy.TruncateNext(random.Next(1, 4));
                    break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(random.Next((int)least.TotalMilliseconds, (int)most.TotalMilliseconds)), cancellation).ConfigureAwait(false);
        }
    }
}
