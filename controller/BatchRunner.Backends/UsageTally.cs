using System.Collections.Concurrent;

namespace BatchRunner.Backends;

/// <summary>
/// What a backend runs now, summed over the runs it last reported on: each observation replaces the run's
/// previous one, a finished run drops out. Backends keep one to answer <see cref="IBatchBackend.Capacity"/>.
/// </summary>
public sealed class UsageTally(int? maxIndexes = null)
{
    private readonly ConcurrentDictionary<string, (int Active, long MilliCpu, long MemoryBytes)> _runs = new(StringComparer.Ordinal);

    public void Observe(BackendRun run, BackendProgress progress)
    {
        var key = $"{run.Namespace}/{run.Name}/{run.RunId}";
        if (progress.IsTerminal || progress.Active == 0 || run.Job is null)
        {
            _runs.TryRemove(key, out _);
            return;
        }

        var resources = run.Job.Spec.Resources;
        _runs[key] = (progress.Active, progress.Active * resources.MilliCpu, progress.Active * resources.MemoryBytes);
    }

    public void Forget(BackendRun run) => _runs.TryRemove($"{run.Namespace}/{run.Name}/{run.RunId}", out _);

    /// <summary>Every run of one BatchJob (it is gone).</summary>
    public void Forget(string ns, string name)
    {
        var prefix = $"{ns}/{name}/";
        foreach (var key in _runs.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)))
        {
            _runs.TryRemove(key, out _);
        }
    }

    public BackendCapacity Capacity
    {
        get
        {
            var (active, cpu, memory) = (0, 0L, 0L);
            foreach (var run in _runs.Values)
            {
                (active, cpu, memory) = (active + run.Active, cpu + run.MilliCpu, memory + run.MemoryBytes);
            }

            return new BackendCapacity(active, cpu, memory, maxIndexes is { } max ? Math.Max(0, max - active) : null);
        }
    }
}
