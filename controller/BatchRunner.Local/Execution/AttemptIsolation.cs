using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace BatchRunner.Local.Execution;

/// <summary>
/// What keeps a run's attempts apart, where the machine allows it: a freezer cgroup per attempt (every process it
/// starts stays findable and is killed when it ends; see <see cref="FreezerCgroups"/>) and an output folder only it
/// can write (see <see cref="PrivateOutputFolders"/>). Both are inherited from the thread that spawns, so a run's
/// attempts are spawned from one thread of this class's own that changes them around each spawn.
/// </summary>
public sealed class AttemptIsolation : IDisposable
{
    private readonly BlockingCollection<Action> _work = [];
    private readonly Thread _thread;
    private readonly PrivateOutputFolders? _folders;
    private readonly string? _cgroups;
    private readonly string? _ownCgroup;

    /// <param name="storeRoot">The store whose output folders become private.</param>
    /// <param name="runId">Names the run's cgroups, with the store.</param>
    public AttemptIsolation(string storeRoot, string runId)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = "batchrunner-spawn" };
        _thread.Start();
        var unavailable = new List<string>();
        if (FreezerCgroups.Unavailable is { } noCgroups)
        {
            unavailable.Add($"no cgroup per attempt ({noCgroups}): detached processes are found through the child subreaper");
        }
        else
        {
            _cgroups = FreezerCgroups.RunFolder(storeRoot, runId);
            _ownCgroup = OnThread(FreezerCgroups.Current);
        }

        var folders = OnThread(() => new PrivateOutputFolders(storeRoot));
        if (folders.Unavailable is { } noFolders)
        {
            folders.Dispose();
            unavailable.Add($"output folders are not private ({noFolders})");
        }
        else
        {
            _folders = folders;
        }

        Unavailable = unavailable;
    }

    /// <summary>What of the isolation this machine does not allow, and why.</summary>
    public IReadOnlyList<string> Unavailable { get; }

    /// <summary>The attempt's cgroup, made empty; null without cgroups.</summary>
    public string? CgroupFor(int index, int attempt) =>
        _cgroups is null ? null : FreezerCgroups.Create(_cgroups, index, attempt);

    /// <summary>Runs <paramref name="spawn"/> inside the attempt's cgroup and with its output folder the store's only writable one.</summary>
    /// <exception cref="IOException">The attempt could not be isolated; nothing was spawned.</exception>
    public T Spawn<T>(string? outputFolder, string? cgroup, Func<T> spawn) => OnThread(() =>
    {
        if (cgroup is not null)
        {
            FreezerCgroups.Enter(cgroup);
        }

        try
        {
            if (_folders is null || outputFolder is null)
            {
                return spawn();
            }

            _folders.Enter(outputFolder);
            try
            {
                return spawn();
            }
            finally
            {
                _folders.Return();
            }
        }
        finally
        {
            if (cgroup is not null)
            {
                try
                {
                    FreezerCgroups.Leave(_ownCgroup!);
                }
                catch (IOException)
                {
                    // The next spawn enters its own attempt's cgroup anyway; only this thread is left behind.
                }
            }
        }
    });

    /// <summary>Kills what the run's cgroups still hold and removes them; how many processes there were.</summary>
    public int EndRun() => _cgroups is null ? 0 : FreezerCgroups.KillRun(_cgroups);

    /// <summary>Kills what a run's attempts left (a runner that died, say): how many processes there were.</summary>
    public static int KillLeftovers(string storeRoot, string runId) =>
        FreezerCgroups.KillRun(FreezerCgroups.RunFolder(storeRoot, runId));

    public void Dispose()
    {
        _work.CompleteAdding();
        _thread.Join();
        _work.Dispose();
        _folders?.Dispose();
    }

    private T OnThread<T>(Func<T> work)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        using var done = new ManualResetEventSlim();
        _work.Add(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                done.Set();
            }
        });
        done.Wait();
        error?.Throw();
        return result;
    }

    private void Loop()
    {
        foreach (var work in _work.GetConsumingEnumerable())
        {
            work();
        }
    }
}
